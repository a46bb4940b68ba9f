import type { ChainableCommander, Redis } from 'ioredis';
import type { StreamEvent } from './event';

export interface StreamTarget {
  key: string;
  /** Trimmed approximately (`MAXLEN ~`), which lets Redis trim whole nodes cheaply. */
  maxLen: number;
}

/** The XADD arguments of one event: flat fields, as DESIGN.md's stream table says. */
function xaddArgs(stream: StreamTarget, event: StreamEvent) {
  return [
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
  ] as const;
}

/** XADDs one event. Re-delivery keeps the same `eventId`, so consumers de-duplicate. */
export async function publishEvent(
  redis: Redis,
  stream: StreamTarget,
  event: StreamEvent,
): Promise<string> {
  return (await redis.xadd(...xaddArgs(stream, event))) as string;
}

/** Queues one XADD on a pipeline: many events, one round trip. */
export function appendEvent(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  pipeline.xadd(...xaddArgs(stream, event));
}
