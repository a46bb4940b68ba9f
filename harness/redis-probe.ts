import { Redis } from 'ioredis';

/**
 * Asks one question on a connection of its own that gives up at once: `ask`'s answer, or false
 * when Redis does not answer (yet). For polling until something is ready.
 */
export async function probeRedis(
  url: string,
  ask: (client: Redis) => Promise<boolean>,
  timeoutMs = 1000,
): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await ask(client);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  return probeRedis(url, async (client) => (await client.ping()) === 'PONG', timeoutMs);
}
