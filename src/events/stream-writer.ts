import type { ChainableCommander } from 'ioredis';
import { isTerminalEvent, isThreadEvent, type Rejection, type StreamEvent } from './event';

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

/** The XADD arguments of one entry: flat fields, as docs/events.md lists them. */
function xaddArgs(key: string, maxLen: number, fields: string[]) {
  return [key, 'MAXLEN', '~', maxLen, '*', ...fields] as const;
}

const eventFields = (event: StreamEvent) => [
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
];

/**
 * Queues a lifecycle event on a pipeline: on the main stream, and a copy on the run's own stream
 * (which expires RUN_FEED_TTL_S after the terminal event). Re-delivery keeps the `eventId`. A
 * thread's event goes on the main stream only: a copy would come after the run's terminal event
 * and set its stream's expiry back to the safety net.
 */
export function appendEvent(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  const runKey = runStreamKey(stream, event.runId);
  const fields = eventFields(event);
  pipeline.xadd(...xaddArgs(stream.key, stream.maxLen, fields));
  if (isThreadEvent(event.type)) return;
  pipeline.xadd(...xaddArgs(runKey, RUN_STREAM_MAXLEN, fields));
  pipeline.expire(
    runKey,
    isTerminalEvent(event.type) ? stream.runFeedTtlS : RUN_STREAM_SAFETY_TTL_S,
  );
}

/** Queues a reply delta: on the run's own stream only (deltas would flood the main one). */
export function appendDelta(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  pipeline.xadd(
    ...xaddArgs(runStreamKey(stream, event.runId), RUN_STREAM_MAXLEN, eventFields(event)),
  );
}

/**
 * Queues an `agent.run.rejected` entry on the main stream: a producer's request or command that
 * was refused. It names the producer's `requestId` (flat, and in the payload) instead of a run.
 */
export function appendRejection(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  rejection: Rejection,
) {
  pipeline.xadd(
    ...xaddArgs(stream.key, stream.maxLen, [
      'type',
      'agent.run.rejected',
      'eventId',
      rejection.eventId,
      'requestId',
      rejection.requestId,
      'occurredAt',
      rejection.occurredAt,
      'payload',
      rejection.payload,
    ]),
  );
}
