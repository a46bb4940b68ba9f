/**
 * Threads as resources, read on SQLite: one thread's view, the list of threads (newest first,
 * paged by cursor, filtered by metadata) and the retention sweep's pick. Mirrors
 * db/postgres/queries/thread-list.ts.
 */
import { and, asc, desc, eq, lt, type SQL, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import { prepared } from '../../prepared';
import type { ThreadCursor, ThreadDetails } from '../../store';
import { UNFINISHED_SQL } from '../../types';
import type { Db } from '../database';
import { threadMetadata, threads } from '../schema';

const UNFINISHED = sql.raw(UNFINISHED_SQL);

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
    commonness: db
      .select({ n: sql<number>`count(*)` })
      .from(
        db
          .select({ one: sql`1` })
          .from(threadMetadata)
          .where(and(eq(threadMetadata.key, p('key')), eq(threadMetadata.value, p('value'))))
          .limit(p('cap'))
          .as('matches'),
      )
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
 * A filter value this common (or more) is walked to, not joined from: see `listThreads`. The
 * count that decides it reads at most this many entries of the covering index.
 */
const COMMON_MATCHES = 2000;

/**
 * See `Store.listThreads`. Built per call: the statement's shape depends on the filter. Without
 * one the `threads_updated` index gives the order, and the scan stops after `limit + 1` rows.
 * With one, SQLite (which keeps no statistics here) would always start from the join, and sort
 * every match: fine for a rare value, half a second for a value a quarter of a million threads
 * share. So the rarest key/value decides: a rare one is a join from `thread_metadata`, whose
 * (key, value, thread_id) index finds the matching threads, and only those are sorted; when even
 * the rarest is common, every key is an EXISTS on the unique (thread_id, key) index and the walk
 * down `threads_updated` stops after `limit + 1` matches.
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
  const counted = filters
    .map(([key, value]) => ({ key, value, count: commonness(db, key, value) }))
    .sort((a, b) => a.count - b.count);
  const first = counted[0] && counted[0].count < COMMON_MATCHES ? counted[0] : undefined;
  for (const { key, value } of first ? counted.slice(1) : counted) {
    conditions.push(sql`exists (select 1 from thread_metadata k
      where k.thread_id = "threads"."id" and k.key = ${key} and k.value = ${value})`);
  }
  const base = db.select(detailsColumns()).from(threads);
  let query = base.$dynamic();
  if (first) {
    const m = alias(threadMetadata, 'm');
    query = query.innerJoin(
      m,
      and(eq(m.threadId, threads.id), eq(m.key, first.key), eq(m.value, first.value)),
    );
  }
  const rows = await query
    .where(and(...conditions))
    .orderBy(desc(threads.updatedAt), desc(threads.id))
    .limit(opts.limit + 1);
  return { threads: rows.slice(0, opts.limit), hasMore: rows.length > opts.limit };
}

/** How many threads have this key/value, counted up to `COMMON_MATCHES` on the covering index. */
function commonness(db: Db, key: string, value: string): number {
  return statements(db).commonness.get({ key, value, cap: COMMON_MATCHES })?.n ?? 0;
}

/** See `Store.listExpiredThreads`: oldest first, on `threads_updated`. */
export async function listExpiredThreads(db: Db, before: Date, limit: number): Promise<string[]> {
  const rows = statements(db).expired.all({ before: before.getTime(), limit });
  return rows.map((row) => row.id);
}
