import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/client';
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
 * A lifecycle event's writes as one script: the XADD on the main stream, the copy on the run's
 * own stream and that stream's expiry, the fields sent once instead of twice, one command
 * instead of three. KEYS: the main stream, then the run's stream (none for a thread's event);
 * ARGV: the main stream's MAXLEN, the run stream's MAXLEN, its TTL, then the fields.
 */
const ANNOUNCE_LUA = `
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
if #KEYS > 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return id
`;
const ANNOUNCE = 'agentRunAnnounce';

type AnnouncePipeline = ChainableCommander & {
  [ANNOUNCE](keyCount: number, ...args: (string | number)[]): ChainableCommander;
};

/**
 * Defines the announce script on a connection (once; ioredis sends it by its SHA and loads it
 * when Redis does not know it). `appendEvent` needs it on the connection of its pipeline.
 */
export function defineStreamCommands(client: RedisClient): void {
  if (ANNOUNCE in client) return;
  client.defineCommand(ANNOUNCE, { lua: ANNOUNCE_LUA });
}

/**
 * Queues a lifecycle event on a pipeline (of a connection `defineStreamCommands` was given): on
 * the main stream, and a copy on the run's own stream (which expires RUN_FEED_TTL_S after the
 * terminal event). Re-delivery keeps the `eventId`. A thread's event goes on the main stream
 * only: a copy would come after the run's terminal event and set its stream's expiry back to the
 * safety net.
 */
export function appendEvent(
  pipeline: ChainableCommander,
  stream: StreamTarget,
  event: StreamEvent,
) {
  const fields = eventFields(event);
  const ttl = isTerminalEvent(event.type) ? stream.runFeedTtlS : RUN_STREAM_SAFETY_TTL_S;
  const keys = isThreadEvent(event.type)
    ? [stream.key]
    : [stream.key, runStreamKey(stream, event.runId)];
  (pipeline as AnnouncePipeline)[ANNOUNCE](
    keys.length,
    ...keys,
    stream.maxLen,
    RUN_STREAM_MAXLEN,
    ttl,
    ...fields,
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
