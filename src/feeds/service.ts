import type { Store } from '../../db/store';
import { isFinishedStatus } from '../../db/types';
import { notFound } from '../errors';
import { isTerminalEvent } from '../events/event';
import type { Fields } from '../events/stream-fields';
import { runStreamKey, type StreamTarget } from '../events/stream-writer';
import type { RunView } from '../runs/model';
import { getRunView, toRunView } from '../runs/service';
import type { ThreadView } from '../threads/model';
import { toThreadView } from '../threads/view';
import { compareIds, type Entry, type FeedReader, isStreamId } from './feed-reader';

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

/** The type of the one event a feed makes itself rather than reading it off a stream. */
export const FEED_RESET = 'agent.feed.reset';

/**
 * What a feed sends first when the events after the client's position are not retained: the
 * state as the database has it now, and `id`, the stream id the feed goes on from. Everything
 * up to `id` is summed up by the payload (read after `id`, so it is at least that new); what
 * comes after `id` follows as events, so resuming from `id` gives exactly what came after.
 */
export interface FeedReset {
  id: string;
  /** Empty on a thread feed. */
  runId: string;
  threadId: string;
  occurredAt: string;
  payload: { run: RunView } | { thread: ThreadView; runs: RunView[] };
}

/**
 * What a client asking for a feed gets: nothing more (the feed is over), or a live feed that
 * `open` subscribes to and that ends when `sink.end()` is called or the client leaves; either
 * may start with a reset.
 */
export type Feed =
  | { kind: 'ended'; reset?: FeedReset }
  | { kind: 'live'; reset?: FeedReset; open: (sink: FeedSink) => Promise<() => void> };

/** How many of a thread's runs (the newest) a thread feed's reset carries. */
const RESET_THREAD_RUNS = 20;

/** The entries that bound a run's latest attempt: a terminal event, or the start of a try. */
const endsOrStartsAttempt = (fields: Fields) =>
  isTerminalEvent(fields.type) || fields.type === 'agent.run.started';

/**
 * A run's events and reply deltas, from its own stream: from the start, or after `lastEventId`;
 * it ends after the run's latest terminal event. A run reopened by an operator's retry goes on
 * in the same stream (a new `agent.run.started`, a new terminal event), so an earlier terminal
 * event neither ends a replay nor stops a client resuming from it.
 *
 * When what the client asked for is not retained — the stream expired (RUN_FEED_TTL_S) or lost
 * its oldest entries, or `lastEventId` is not an entry of it (never served, or not a stream id
 * at all) — the feed starts with a reset carrying the run view. Unknown runs are a 404 before
 * any stream opens.
 */
export async function openRunFeed(
  deps: FeedDeps,
  runId: string,
  lastEventId: string | null,
): Promise<Feed> {
  const run = await deps.db.getRun(runId);
  if (!run) throw notFound('run', runId);
  const key = runStreamKey(deps.stream, runId);
  const fromStart = lastEventId === null || lastEventId === '0-0';
  // The stream is read before any run view, so a reset's view is at least as new as its id.
  const [first, latest, resumedFrom] = await Promise.all([
    deps.feeds.firstEntry(key),
    deps.feeds.lastMatching(key, endsOrStartsAttempt),
    fromStart || !isStreamId(lastEventId) ? undefined : deps.feeds.entry(key, lastEventId),
  ]);
  // From the start, the history is whole only while the stream begins with the run's request.
  const retained = fromStart ? first?.fields.type === 'agent.run.requested' : !!resumedFrom;
  const after = retained ? (resumedFrom?.id ?? '0-0') : latest.lastId;
  const view = retained ? undefined : await getRunView(deps.db, runId);
  const reset: FeedReset | undefined = view && {
    id: after,
    runId,
    threadId: view.threadId,
    occurredAt: new Date().toISOString(),
    payload: { run: view },
  };
  // A terminal event at or after this id is the run's latest: the feed ends after it.
  const endsAt = latest.found?.id ?? '0-0';
  const pastLatestTerminal =
    latest.found !== undefined &&
    isTerminalEvent(latest.found.fields.type) &&
    compareIds(after, endsAt) >= 0;
  // Expired: a finished run has nothing more to come, and the reset carries its final view.
  const expiredWhenFinished = !first && view !== undefined && isFinishedStatus(view.status);
  if (pastLatestTerminal || expiredWhenFinished) return { kind: 'ended', reset };
  return {
    kind: 'live',
    reset,
    open: (sink) =>
      deps.feeds.subscribe(key, after, (entry) => {
        sink.send(entry);
        if (isTerminalEvent(entry.fields.type) && compareIds(entry.id, endsAt) >= 0) sink.end();
      }),
  };
}

/**
 * Every lifecycle event of a thread, from the main stream, open-ended: from the moment of
 * connection, or after `lastEventId`. A `lastEventId` the stream no longer holds (trimmed to
 * REDIS_STREAM_MAXLEN) or never held gets a reset carrying the thread view and its newest runs.
 */
export async function openThreadFeed(
  deps: FeedDeps,
  threadId: string,
  lastEventId: string | null,
): Promise<Feed> {
  const thread = await deps.db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  const key = deps.stream.key;
  const live = (after: string, reset?: FeedReset): Feed => ({
    kind: 'live',
    reset,
    open: (sink) =>
      deps.feeds.subscribe(key, after, (entry) => {
        if (entry.fields.threadId === threadId) sink.send(entry);
      }),
  });
  if (lastEventId === null) return live(await deps.feeds.lastIdOf(key));
  if (isStreamId(lastEventId) && lastEventId !== '0-0') {
    if (await deps.feeds.entry(key, lastEventId)) return live(lastEventId);
  }
  // Read before the views, so they are at least as new as the id the reset hands out. `0-0`
  // (what a reset hands out while the stream is empty) is kept only while it still is.
  const after = await deps.feeds.lastIdOf(key);
  if (lastEventId === '0-0' && after === '0-0') return live(after);
  return live(after, await threadReset(deps.db, threadId, after));
}

async function threadReset(db: Store, threadId: string, id: string): Promise<FeedReset> {
  const [details, page] = await Promise.all([
    db.getThreadDetails(threadId),
    db.listThreadRuns(threadId, { limit: RESET_THREAD_RUNS }),
  ]);
  if (!details) throw notFound('thread', threadId);
  return {
    id,
    runId: '',
    threadId,
    occurredAt: new Date().toISOString(),
    payload: {
      thread: toThreadView(details),
      runs: page.runs.map(({ run, reply }) => toRunView(run, reply)),
    },
  };
}
