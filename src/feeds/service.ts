import type { Store } from '../../db/store';
import { notFound } from '../errors';
import { runStreamKey, type StreamTarget } from '../events/stream-writer';
import type { FeedReader } from './feed-reader';
import { endedFeed, sseResponse } from './sse';

export interface FeedDeps {
  db: Store;
  feeds: FeedReader;
  stream: StreamTarget;
}

const TERMINAL = new Set(['agent.run.completed', 'agent.run.failed']);

/**
 * A run's events and reply deltas, from its own stream: from the start, or after Last-Event-ID;
 * it ends after the terminal event. Unknown runs are a 404 before any stream opens.
 */
export async function openRunFeed(deps: FeedDeps, request: Request, runId: string) {
  const run = await deps.db.getRun(runId);
  if (!run) throw notFound('run', runId);
  const key = runStreamKey(deps.stream, runId);
  const lastEventId = request.headers.get('last-event-id');
  if (lastEventId) {
    const resumedFrom = await deps.feeds.entry(key, lastEventId);
    if (resumedFrom && TERMINAL.has(resumedFrom.fields.type ?? '')) return endedFeed();
  }
  const finished = run.status === 'completed' || run.status === 'failed';
  // A finished run whose stream has expired (RUN_FEED_TTL_S) has nothing left to replay.
  if (finished && (await deps.feeds.lastIdOf(key)) === '0-0') return endedFeed();
  return sseResponse(request, (sink) =>
    deps.feeds.subscribe(key, lastEventId ?? '0-0', (entry) => {
      sink.send(entry);
      if (TERMINAL.has(entry.fields.type ?? '')) sink.end();
    }),
  );
}

/**
 * Every lifecycle event of a thread, from the main stream, open-ended: from the moment of
 * connection, or after Last-Event-ID.
 */
export async function openThreadFeed(deps: FeedDeps, request: Request, threadId: string) {
  const thread = await deps.db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  const key = deps.stream.key;
  const after = request.headers.get('last-event-id') ?? (await deps.feeds.lastIdOf(key));
  return sseResponse(request, (sink) =>
    deps.feeds.subscribe(key, after, (entry) => {
      if (entry.fields.threadId === threadId) sink.send(entry);
    }),
  );
}
