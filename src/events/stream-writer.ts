import type { ChainableCommander } from 'ioredis';
import type { StreamEvent } from './event';

export interface StreamTarget {
  key: string;
  /** Trimmed approximately (`MAXLEN ~`), which lets Redis trim whole nodes cheaply. */
  maxLen: number;
  /** How long a run's own stream lives after its terminal event (RUN_FEED_TTL_S). */
  runFeedTtlS: number;
}

/** A run's own stream: copies of its lifecycle events and its reply deltas, in one order. */
export const runStreamKey = (stream: StreamTarget, runId: string) => `${stream.key}:run:${runId}`;
/** A run's stream is bounded too: deltas are batched, so this is far beyond any reply. */
const RUN_STREAM_MAXLEN = 10_000;
/** Until its run ends, a run's stream lives at most this long (a safety net, not a feed TTL). */
const RUN_STREAM_SAFETY_TTL_S = 24 * 3600;

/** The XADD arguments of one event: flat fields, as DESIGN.md's stream table says. */
function xaddArgs(key: string, maxLen: number, event: StreamEvent) {
  return [
    key,
    'MAXLEN',
    '~',
    maxLen,
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

const TERMINAL = new Set(['agent.run.completed', 'agent.run.failed']);

/**
 * Queues a lifecycle event on a pipeline: on the main stream, and a copy on the run's own stream
 * (which expires RUN_FEED_TTL_S after the terminal event). Re-delivery keeps the `eventId`.
 */
export function appendEvent(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  const runKey = runStreamKey(stream, event.runId);
  pipeline.xadd(...xaddArgs(stream.key, stream.maxLen, event));
  pipeline.xadd(...xaddArgs(runKey, RUN_STREAM_MAXLEN, event));
  pipeline.expire(runKey, TERMINAL.has(event.type) ? stream.runFeedTtlS : RUN_STREAM_SAFETY_TTL_S);
}

/** Queues a reply delta: on the run's own stream only (deltas would flood the main one). */
export function appendDelta(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  pipeline.xadd(...xaddArgs(runStreamKey(stream, event.runId), RUN_STREAM_MAXLEN, event));
}
