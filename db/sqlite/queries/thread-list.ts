/**
 * Threads as resources, read on SQLite: one thread's view, the list of threads (newest first,
 * paged by cursor, filtered by metadata) and the retention sweep's pick. Mirrors
 * db/postgres/queries/thread-list.ts.
 */
import { and, asc, desc, eq, lt, type SQL, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import { prepared } from '../../prepared';
import type { ThreadCursor, ThreadDetails } from '../../store';
import { UNFINISHED_RUN_STATUSES } from '../../types';
import type { Db } from '../database';
import { threadMetadata, threads } from '../schema';

const UNFINISHED = sql.raw(`(${UNFINISHED_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`);

/**
 * A thread's row and what its view shows beyond it, as columns of the same select: correlated
 * subqueries, each a lookup on `runs_thread_seq` (thread_id, seq), so a page of threads costs one
 * statement, not one per thread. Written as SQL with qualified names: drizzle leaves a column of
 * a one-table select unqualified, and inside the subquery `"id"` would be the run's.
 */
export const detailsColumns = () => ({
  thread: threads,
  busy: sql<boolean>`exists (select 1 from runs r where r.thread_id = "threads"."id"
    and r.status in ${UNFINISHED})`.mapWith(Boolean),
  lastRunId: sql<string | null>`(select r.id from runs r where r.thread_id = "threads"."id"
    order by r.seq desc limit 1)`,
});

const p = sql.placeholder;
/** The reads of one thread and the sweep's (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'thread-list', (db) => ({
    details: db
      .select(detailsColumns())
      .from(threads)
      .where(eq(threads.id, p('id')))
      .prepare(),
    expired: db
      .select({ id: threads.id })
      .from(threads)
      .where(lt(threads.updatedAt, p('before')))
      .orderBy(asc(threads.updatedAt), asc(threads.id))
      .limit(p('limit'))
      .prepare(),
  }));

/** See `Store.getThreadDetails`. */
export async function getThreadDetails(
  db: Db,
  threadId: string,
): Promise<ThreadDetails | undefined> {
  return readThreadDetails(db, threadId);
}

/** `getThreadDetails`, synchronous: for the write units that answer with the thread's view. */
export function readThreadDetails(db: Db, threadId: string): ThreadDetails | undefined {
  return statements(db).details.get({ id: threadId });
}

/**
 * See `Store.listThreads`. Built per call: the statement's shape depends on how many metadata
 * keys filter it. Without a filter the `threads_updated` index gives the order, and the scan stops
 * after `limit + 1` rows. With one, the first key/value is a join from `thread_metadata`, so the
 * (key, value, thread_id) index finds the matching threads and only those are sorted; each
 * further key is an EXISTS on the unique (thread_id, key) index.
 */
export async function listThreads(
  db: Db,
  opts: { limit: number; after?: ThreadCursor; metadata: Record<string, string> },
): Promise<{ threads: ThreadDetails[]; hasMore: boolean }> {
  const filters = Object.entries(opts.metadata);
  const conditions: SQL[] = [];
  // A row value, so that the index range starts at the cursor (an OR of the two columns was
  // a filter over every newer thread on PostgreSQL: a page deep in read all the pages before it).
  if (opts.after) {
    conditions.push(
      sql`("threads"."updated_at", "threads"."id") < (${opts.after.updatedAt.getTime()}, ${opts.after.id})`,
    );
  }
  const [first, ...rest] = filters;
  for (const [key, value] of rest) {
    conditions.push(sql`exists (select 1 from thread_metadata k
      where k.thread_id = "threads"."id" and k.key = ${key} and k.value = ${value})`);
  }
  const base = db.select(detailsColumns()).from(threads);
  let query = base.$dynamic();
  if (first) {
    const [key, value] = first;
    const m = alias(threadMetadata, 'm');
    query = query.innerJoin(m, and(eq(m.threadId, threads.id), eq(m.key, key), eq(m.value, value)));
  }
  const rows = await query
    .where(and(...conditions))
    .orderBy(desc(threads.updatedAt), desc(threads.id))
    .limit(opts.limit + 1);
  return { threads: rows.slice(0, opts.limit), hasMore: rows.length > opts.limit };
}

/** See `Store.listExpiredThreads`: oldest first, on `threads_updated`. */
export async function listExpiredThreads(db: Db, before: Date, limit: number): Promise<string[]> {
  const rows = statements(db).expired.all({ before: before.getTime(), limit });
  return rows.map((row) => row.id);
}
