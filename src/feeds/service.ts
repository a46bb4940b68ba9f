import type { Store } from '../../db/store';
import { isFinishedStatus } from '../../db/types';
import { notFound } from '../errors';
import { isTerminalEvent } from '../events/event';
import type { Fields } from '../events/stream-fields';
import { runStreamKey, type StreamTarget } from '../events/stream-writer';
import { compareIds, type Entry, type FeedReader } from './feed-reader';

export interface FeedDeps {
  db: Store;
  feeds: FeedReader;
  stream: StreamTarget;
}

/** Where a live feed's entries go (an SSE response, sse.ts); `end` closes the feed. */
export interface FeedSink {
  send(entry: Entry): void;
  end(): void;
}

/**
 * What a client asking for a feed gets: nothing more (the feed is over), or a live feed that
 * `open` subscribes to and that ends when `sink.end()` is called or the client leaves.
 */
export type Feed =
  | { kind: 'ended' }
  | { kind: 'live'; open: (sink: FeedSink) => Promise<() => void> };

const ENDED: Feed = { kind: 'ended' };

/** The entries that bound a run's latest attempt: a terminal event, or the start of a try. */
const endsOrStartsAttempt = (fields: Fields) =>
  isTerminalEvent(fields.type) || fields.type === 'agent.run.started';

/**
 * A run's events and reply deltas, from its own stream: from the start, or after `lastEventId`;
 * it ends after the run's latest terminal event. A run reopened by an operator's retry goes on
 * in the same stream (a new `agent.run.started`, a new terminal event), so an earlier terminal
 * event neither ends a replay nor stops a client resuming from it. Unknown runs are a 404
 * before any stream opens.
 */
export async function openRunFeed(
  deps: FeedDeps,
  runId: string,
  lastEventId: string | null,
): Promise<Feed> {
  const run = await deps.db.getRun(runId);
  if (!run) throw notFound('run', runId);
  const key = runStreamKey(deps.stream, runId);
  const latest = await deps.feeds.lastMatching(key, endsOrStartsAttempt);
  // A finished run whose stream has expired (RUN_FEED_TTL_S) has nothing left to replay.
  if (isFinishedStatus(run.status) && latest.lastId === '0-0') return ENDED;
  const after = lastEventId ?? '0-0';
  // A terminal event at or after this id is the run's latest: the feed ends after it.
  const endsAt = latest.found?.id ?? '0-0';
  if (latest.found && isTerminalEvent(latest.found.fields.type) && compareIds(after, endsAt) >= 0) {
    return ENDED;
  }
  return {
    kind: 'live',
    open: (sink) =>
      deps.feeds.subscribe(key, after, (entry) => {
        sink.send(entry);
        if (isTerminalEvent(entry.fields.type) && compareIds(entry.id, endsAt) >= 0) sink.end();
      }),
  };
}

/**
 * Every lifecycle event of a thread, from the main stream, open-ended: from the moment of
 * connection, or after `lastEventId`.
 */
export async function openThreadFeed(
  deps: FeedDeps,
  threadId: string,
  lastEventId: string | null,
): Promise<Feed> {
  const thread = await deps.db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  const key = deps.stream.key;
  const after = lastEventId ?? (await deps.feeds.lastIdOf(key));
  return {
    kind: 'live',
    open: (sink) =>
      deps.feeds.subscribe(key, after, (entry) => {
        if (entry.fields.threadId === threadId) sink.send(entry);
      }),
  };
}
