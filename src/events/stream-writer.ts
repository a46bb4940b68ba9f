import type { Redis } from 'ioredis';
import type { StreamEvent } from './event';

export interface StreamTarget {
  key: string;
  /** Trimmed approximately (`MAXLEN ~`), which lets Redis trim whole nodes cheaply. */
  maxLen: number;
}

/** XADDs one event as flat fields. Re-delivery keeps the same `eventId`, so consumers de-dupe. */
export async function publishEvent(
  redis: Redis,
  stream: StreamTarget,
  event: StreamEvent,
): Promise<string> {
  const id = await redis.xadd(
    stream.key,
    'MAXLEN',
    '~',
    stream.maxLen,
    '*',
    'type',
    event.type,
    'eventId',
    event.eventId,
    'runId',
    event.runId,
    'threadId',
    event.threadId,
    'occurredAt',
    event.occurredAt,
    'payload',
    event.payload,
  );
  return id as string;
}
