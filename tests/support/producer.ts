import type { ChainableCommander, Cluster, Redis } from 'ioredis';

/**
 * A producer: another service asking for a run by adding an entry to the stream (docs/events.md,
 * "Stream requests"). Works on a client or on a pipeline.
 */
export function addStreamRequest<T extends Redis | Cluster | ChainableCommander>(
  redis: T,
  key: string,
  requestId: string,
  payload: unknown,
): ReturnType<T['xadd']> {
  return redis.xadd(
    key,
    '*',
    'type',
    'agent.run.requested',
    'requestId',
    requestId,
    'payload',
    typeof payload === 'string' ? payload : JSON.stringify(payload),
  ) as ReturnType<T['xadd']>;
}

/** Adds many requests in one round trip; their payloads are `{content: <requestId>}`. */
export async function addStreamRequests(redis: Redis, key: string, requestIds: string[]) {
  const pipeline = redis.pipeline();
  for (const id of requestIds) addStreamRequest(pipeline, key, id, { content: id });
  await pipeline.exec();
}
