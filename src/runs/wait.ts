import type { Store } from '../../db/store';
import { isFinishedStatus } from '../../db/types';
import { isTerminalEvent } from '../events/event';
import { runStreamKey, type StreamTarget } from '../events/stream-writer';
import type { FeedReader } from '../feeds/feed-reader';
import type { RunView } from './model';
import { getRunView } from './service';

export interface RunWaitDeps {
  db: Store;
  /** The process's one shared reader: a thousand waiters on a run are one stream it watches. */
  feeds: FeedReader;
  stream: StreamTarget;
}

/**
 * The one rule for when a waiting client is answered, asked of the run as read from the
 * database and of each entry of its stream: the run is terminal, or paused for its client
 * (`requires_action`, announced by `agent.run.requires_action`): the client has something to
 * do. `cancelling` is not terminal: the wait goes on until the worker has stopped and the run is
 * `cancelled`.
 */
export function endsWait(seen: { status: string } | { eventType: string | undefined }): boolean {
  return 'status' in seen
    ? isFinishedStatus(seen.status) || seen.status === 'requires_action'
    : isTerminalEvent(seen.eventType) || seen.eventType === 'agent.run.requires_action';
}

/**
 * `GET /api/chat/runs/:runId?wait=N`: the run view once `endsWait` holds, or after `seconds`,
 * or when `signal` aborts (the client left), whichever comes first. 404 for an unknown run.
 *
 * The order is what makes it safe: the run stream's last id is taken *before* the run is read,
 * and the subscription starts after that id. A run's events are written after its transaction
 * commits, so an event the read did not see is after that id, and the subscription's catch-up
 * delivers it even if it was written before the subscription began.
 */
export async function waitForRunView(
  deps: RunWaitDeps,
  runId: string,
  opts: { seconds: number; signal?: AbortSignal },
): Promise<RunView> {
  const { promise: over, resolve: stop } = Promise.withResolvers<void>();
  const timer = setTimeout(stop, opts.seconds * 1000);
  const onAbort = () => stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let subscribing: Promise<() => void> | undefined;
  try {
    const key = runStreamKey(deps.stream, runId);
    // Redis not answering must not hold the client past its time: then the view as it is.
    const afterId = await Promise.race([deps.feeds.lastIdOf(key).catch(() => over), over]);
    const view = await getRunView(deps.db, runId);
    if (afterId === undefined || endsWait(view) || opts.signal?.aborted) return view;
    subscribing = deps.feeds.subscribe(key, afterId, (entry) => {
      if (endsWait({ eventType: entry.fields.type })) stop();
    });
    // A failed subscription (Redis gone) sees no event: the time decides, then the database.
    subscribing.catch(() => {});
    await over;
    // The client is gone: nobody reads the answer, so the database is spared the read.
    if (opts.signal?.aborted) return view;
    // Ended by its event (written after the commit, so the database shows it) or by the time.
    return await getRunView(deps.db, runId);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    // Also when the subscription is still catching up: it is released as soon as it exists.
    subscribing?.then(
      (unsubscribe) => unsubscribe(),
      () => {},
    );
  }
}
