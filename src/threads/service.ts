import type { Store } from '../../db/store';
import type { Run } from '../../db/types';
import type { Deps } from '../deps';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { AppError, notFound } from '../errors';
import { buildEvent } from '../events/event';
import { runStreamKey } from '../events/stream-writer';
import { newThreadId } from '../ids';
import { isStorableText } from '../storable-text';
import {
  type CreateThreadBody,
  MAX_METADATA_KEYS,
  MAX_METADATA_VALUE_CHARS,
  MAX_TITLE_CHARS,
  METADATA_KEY_PATTERN,
  type PatchThreadBody,
  THREADS_PAGE,
  type ThreadsPage,
  type ThreadView,
} from './model';
import { toThreadView } from './view';

/** What deleting a thread needs: the store, and what its runs leave in Redis and the queue. */
export type ThreadDeps = Pick<
  Deps,
  'db' | 'publisher' | 'metrics' | 'queue' | 'cancels' | 'logger' | 'redis' | 'stream'
>;

const METADATA_KEY = new RegExp(METADATA_KEY_PATTERN);
const METADATA_PREFIX = 'metadata.';

export async function getThreadView(db: Store, threadId: string): Promise<ThreadView> {
  const details = await db.getThreadDetails(threadId);
  if (!details) throw notFound('thread', threadId);
  return toThreadView(details);
}

/** An empty thread with its metadata; the id is generated unless given, and must be new. */
export async function createThread(db: Store, body: CreateThreadBody): Promise<ThreadView> {
  const metadata = checkMetadata(body.metadata ?? {});
  const threadId = body.threadId ?? newThreadId();
  const created = await db.createThread({ threadId, metadata, now: new Date() });
  if (created.kind === 'exists') {
    throw new AppError('thread_exists', `thread "${threadId}" exists already`, { threadId });
  }
  return toThreadView(created.thread);
}

/**
 * One page of threads, most recently updated first. `params` is the whole query string: besides
 * `limit` and `cursor` (validated by the route's schema) only `metadata.<key>` filters may be
 * there, each key once.
 */
export async function listThreads(
  db: Store,
  query: { limit?: number; cursor?: string },
  params: URLSearchParams,
): Promise<ThreadsPage> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name === 'limit' || name === 'cursor') continue;
    if (!name.startsWith(METADATA_PREFIX)) {
      throw new AppError('invalid_request', `unknown query parameter "${name}"`, { field: name });
    }
    const key = name.slice(METADATA_PREFIX.length);
    if (!METADATA_KEY.test(key) || key in metadata) {
      throw new AppError(
        'invalid_request',
        `"${name}": a metadata key must match ${METADATA_KEY_PATTERN}, once`,
        { field: name },
      );
    }
    checkMetadataValue(value, name);
    metadata[key] = value;
  }
  if (Object.keys(metadata).length > MAX_METADATA_KEYS) {
    throw new AppError('invalid_request', `at most ${MAX_METADATA_KEYS} metadata filters`);
  }
  const at = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const after = at && { updatedAt: at.at, id: at.id };
  const page = await db.listThreads({
    limit: query.limit ?? THREADS_PAGE.default,
    after,
    metadata,
  });
  const last = page.threads.at(-1)?.thread;
  return {
    threads: page.threads.map(toThreadView),
    nextCursor: page.hasMore && last ? encodeCursor({ at: last.updatedAt, id: last.id }) : null,
  };
}

/** Replaces the metadata and/or sets a user's title; at least one of them. */
export async function updateThread(
  db: Store,
  threadId: string,
  body: PatchThreadBody,
): Promise<ThreadView> {
  if (body.metadata == null && body.title == null) {
    throw new AppError('invalid_request', 'give metadata, title or both');
  }
  const metadata = body.metadata == null ? undefined : checkMetadata(body.metadata);
  const title = body.title == null ? undefined : checkTitle(body.title);
  const details = await db.updateThread({ threadId, metadata, title, now: new Date() });
  if (!details) throw notFound('thread', threadId);
  return toThreadView(details);
}

/**
 * Deletes a thread whole (the route, and the retention sweep). The store cancels its unfinished
 * runs and deletes everything in one transaction; what is left is outside the database, after
 * the commit: the cancelled runs' events and the deletion are delivered (in one turn, so in one
 * batch and in order), the workers of running runs are told to stop, the runs' jobs leave the
 * queue (a waiting or delayed one would otherwise run and find nothing) and their streams go.
 * None of these can undo the deletion: a failure is logged, and the outbox relay delivers what
 * could not be. False when there was no such thread (another sweep or request deleted it first).
 */
export async function deleteThread(deps: ThreadDeps, threadId: string): Promise<boolean> {
  const now = new Date();
  const deletion = await deps.db.deleteThread({
    threadId,
    now,
    cancelledEvent: (run: Run) =>
      buildEvent(
        'agent.run.cancelled',
        { runId: run.id, threadId: run.threadId },
        { reason: run.cancel?.reason ?? null, by: 'thread_deleted', attempts: run.attempts },
        now,
      ),
    deletedEvent: (cancelledRunIds: string[]) =>
      buildEvent('agent.thread.deleted', { runId: '', threadId }, { cancelledRunIds }, now),
  });
  if (!deletion) return false;
  const log = deps.logger.child({ threadId });
  for (const _ of deletion.cancelledRunIds) {
    deps.metrics.runsFinished.inc({ status: 'cancelled' });
    deps.metrics.runsCancelled.inc({ by: 'thread_deleted' });
  }
  await Promise.all(deletion.rows.map((row) => deps.publisher.deliver(row)));
  if (deletion.cancelling.length > 0) await deps.cancels.publish(deletion.cancelling);
  await Promise.all(
    deletion.runIds.map((runId) =>
      deps.queue.remove(runId).catch((error: unknown) => {
        log.debug({ err: error, runId }, 'a deleted run’s job stays; it finds no run and skips');
      }),
    ),
  );
  if (deletion.runIds.length > 0) {
    // One multi-key DEL: every run stream starts with the stream key, so in a Cluster they
    // share its hash tag and its slot (src/redis/cluster-keys.ts).
    const keys = deletion.runIds.map((runId) => runStreamKey(deps.stream, runId));
    await deps.redis.del(...keys).catch((error: unknown) => {
      log.warn({ err: error }, 'a deleted thread’s run streams stay until they expire');
    });
  }
  log.info(
    { runs: deletion.runIds.length, cancelled: deletion.cancelledRunIds.length },
    'thread deleted',
  );
  return true;
}

function checkMetadata(metadata: Record<string, string>): Record<string, string> {
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_KEYS) {
    throw new AppError('invalid_request', `metadata has at most ${MAX_METADATA_KEYS} keys`, {
      field: 'metadata',
      keys: entries.length,
    });
  }
  for (const [key, value] of entries) {
    if (!METADATA_KEY.test(key)) {
      throw new AppError(
        'invalid_request',
        `metadata key "${key}" must match ${METADATA_KEY_PATTERN}`,
        { field: `metadata/${key}` },
      );
    }
    checkMetadataValue(value, `metadata/${key}`);
  }
  return metadata;
}

function checkMetadataValue(value: string, field: string) {
  if ([...value].length > MAX_METADATA_VALUE_CHARS || !isStorableText(value)) {
    throw new AppError(
      'invalid_request',
      `${field}: a metadata value is at most ${MAX_METADATA_VALUE_CHARS} characters, without NUL characters or unpaired surrogates`,
      { field },
    );
  }
}

function checkTitle(raw: string): string {
  const title = raw.trim();
  const length = [...title].length;
  if (length === 0 || length > MAX_TITLE_CHARS || !isStorableText(title)) {
    throw new AppError(
      'invalid_request',
      `title must be 1 to ${MAX_TITLE_CHARS} characters after trimming, without NUL characters or unpaired surrogates`,
      { field: 'title', length },
    );
  }
  return title;
}
