import { and, asc, desc, eq, inArray, lt, ne, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { prepared } from '../../prepared';
import type { RunError, RunFinish } from '../../store';
import { isFinishedStatus, UNFINISHED_RUN_STATUSES } from '../../types';
import type { Db } from '../database';
import { type Message, messages, type OutboxRow, type Run, runs } from '../schema';
import { storable } from '../storable';
import { getMessage } from './messages';
import { handEnqueueStatement, insertOutbox } from './outbox';

/**
 * `UNFINISHED_RUN_STATUSES` as a list of SQL literals, for the statements written as plain SQL:
 * the text stays what it was when the values were typed into it, so the planner sees them.
 */
export const UNFINISHED = sql.raw(`(${UNFINISHED_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`);

const p = sql.placeholder;
/**
 * The run job's statements outside a transaction (see db/prepared.ts); `finishRun` runs in one,
 * so it sends plain SQL.
 */
const statements = (db: Db) =>
  prepared(db, 'runs', (db) => ({
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare('get_run'),
    startAttempt: db
      .update(runs)
      .set({
        status: 'running',
        attempts: sql`${runs.attempts} + 1`,
        startedAt: sql`coalesce(${runs.startedAt}, ${p('now')}::timestamptz)`,
        finishedAt: null,
      })
      .where(and(eq(runs.id, p('id')), ne(runs.status, 'completed')))
      .returning()
      .prepare('start_run_attempt'),
    retry: db
      .update(runs)
      .set({ status: 'queued', attempts: sql`${p('attempts')}`, error: sql`${p('error')}::jsonb` })
      .where(and(eq(runs.id, p('id')), ne(runs.status, 'completed')))
      .prepare('record_run_retry'),
  }));

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

export async function getRun(db: Db, runId: string): Promise<Run | undefined> {
  if (!storable(runId)) return undefined;
  const [run] = await statements(db).getRun.execute({ id: runId });
  return run;
}

export async function getRunWithReply(
  db: Db,
  runId: string,
): Promise<{ run: Run; reply: Message | null } | undefined> {
  const run = await getRun(db, runId);
  if (!run) return undefined;
  const reply = run.replyMessageId ? ((await getMessage(db, run.replyMessageId)) ?? null) : null;
  return { run, reply };
}

export async function startRunAttempt(db: Db, runId: string, now: Date): Promise<Run | null> {
  const q = statements(db);
  const [run] = await q.startAttempt.execute({ id: runId, now: now.toISOString() });
  return run ?? null;
}

export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: RunError,
): Promise<void> {
  const q = statements(db);
  await q.retry.execute({ id: runId, attempts, error: json(error) });
}

/**
 * See `Store.finishRun`. Its thread is locked before it looks for the next run, as
 * `insertRunRequest` locks it before it asks whether a run is unfinished: see there for why.
 */
export function finishRun(db: Db, input: RunFinish): Promise<OutboxRow | null> {
  const { runId, reply } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx) => {
    // 1. The run: none, or finished already (another delivery of the job finished it first).
    // Locked, and its thread with it.
    const [run] = await tx.execute<{ status: string; thread_id: string; seq: number }>(sql`
      select r.status, r.thread_id, r.seq from runs r join threads t on t.id = r.thread_id
      where r.id = ${runId} for update`);
    if (!run || isFinishedStatus(run.status)) return null;
    // Steps 2 to 5 are the parts of one statement: one round trip.
    // 2. The reply, in the slot after its user message, counted on the thread.
    const storeReply = reply
      ? sql`
        stored_reply as (
          insert into messages (id, thread_id, run_id, role, content, seq, created_at)
          values (${reply.id}, ${run.thread_id}, ${runId}, 'assistant', ${reply.content},
                  ${run.seq + 1}, ${now}::timestamptz)
        ),
        counted as (
          update threads set message_count = message_count + 1, updated_at = ${now}::timestamptz
          where id = ${run.thread_id}
        ),`
      : sql``;
    // 3. The run's end.
    const finished = sql`
      finished as (
        update runs set status = ${reply ? 'completed' : 'failed'}, attempts = ${input.attempts},
          error = ${json(input.error)}::jsonb, usage = ${json(input.usage)}::jsonb,
          reply_message_id = ${reply?.id ?? null}, finished_at = ${now}::timestamptz
        where id = ${runId}
      )`;
    // 4. The thread's next unfinished run.
    const next = sql`
      next_run as (
        select id from runs
        where thread_id = ${run.thread_id} and status in ${UNFINISHED} and id <> ${runId}
        order by seq limit 1
      )`;
    // 5. Its announcement still in the outbox: that row enqueues it, after the announcement.
    const handed = sql`
      handed as (${handEnqueueStatement(sql`(select id from next_run)`)}
      )`;
    const [found] = await tx.execute<{ id: string | null; handed: boolean }>(sql`
      with ${storeReply} ${finished}, ${next}, ${handed}
      select (select id from next_run) as id, exists (select 1 from handed) as handed`);
    // 6. The terminal event's row, with the next run's job unless step 5 handed it over.
    return insertOutbox(tx, input.event, found?.handed ? null : (found?.id ?? null), input.now);
  });
}

/** See `Store.listThreadRuns`: newest first, each run with its reply (one left join). */
export async function listThreadRuns(
  db: Db,
  threadId: string,
  opts: { limit: number; beforeSeq?: number },
): Promise<{ runs: { run: Run; reply: Message | null }[]; hasMore: boolean }> {
  const where =
    opts.beforeSeq === undefined
      ? eq(runs.threadId, threadId)
      : and(eq(runs.threadId, threadId), lt(runs.seq, opts.beforeSeq));
  const rows = await db
    .select({ run: runs, reply: messages })
    .from(runs)
    .leftJoin(messages, eq(messages.id, runs.replyMessageId))
    .where(where)
    .orderBy(desc(runs.seq))
    .limit(opts.limit + 1);
  return { runs: rows.slice(0, opts.limit), hasMore: rows.length > opts.limit };
}

/** The runs behind a head have no job by design: the head's completion enqueues the next. */
export async function listThreadHeads(db: Db, limit: number): Promise<Run[]> {
  const earlier = alias(runs, 'earlier');
  return db
    .select()
    .from(runs)
    .where(
      and(
        inArray(runs.status, UNFINISHED_RUN_STATUSES),
        notExists(
          db
            .select({ one: sql`1` })
            .from(earlier)
            .where(
              and(
                eq(earlier.threadId, runs.threadId),
                inArray(earlier.status, UNFINISHED_RUN_STATUSES),
                lt(earlier.seq, runs.seq),
              ),
            ),
        ),
      ),
    )
    .orderBy(asc(runs.createdAt))
    .limit(limit);
}
