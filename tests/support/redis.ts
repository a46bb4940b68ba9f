import { Redis } from 'ioredis';
import type { RedisClient } from '../../src/redis/client';

/** The shared Redis the integration tests use; each test run isolates itself by key prefix. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Set by preload.ts: true when the Redis integration tests should run. */
export function redisTestsEnabled(): boolean {
  return (globalThis as { __redisTests?: boolean }).__redisTests === true;
}

/**
 * Deletes every key matching a KEYS pattern. KEYS sees one server's keys, so on a Cluster it asks
 * every master; keys are deleted one by one, as a Cluster refuses a DEL across slots.
 */
export async function deleteKeysMatching(client: RedisClient, pattern: string): Promise<number> {
  const servers = client instanceof Redis ? [client] : client.nodes('master');
  const keys = (await Promise.all(servers.map((server) => server.keys(pattern)))).flat();
  await Promise.all(keys.map((key) => client.del(key)));
  return keys.length;
}
