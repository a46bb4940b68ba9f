import { and, asc, desc, eq, inArray, lt, ne, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import { prepared } from '../../prepared';
import type { RunError, RunFinish } from '../../store';
import { isFinishedStatus, UNFINISHED_RUN_STATUSES } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { type Message, messages, type OutboxRow, type Run, runs, threads } from '../schema';
import { handEnqueueStatement, insertOutboxStatement } from './outbox';

const p = sql.placeholder;
/** The run job's statements (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'runs', (db) => ({
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare(),
    startAttempt: db
      .update(runs)
      .set({
        status: 'running',
        attempts: sql`${runs.attempts} + 1`,
        startedAt: sql`coalesce(${runs.startedAt}, ${p('now')})`,
        finishedAt: null,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    retry: db
      .update(runs)
      .set({ status: 'queued', attempts: sql`${p('attempts')}`, error: sql`${p('error')}` })
      .where(and(eq(runs.id, p('id')), ne(runs.status, 'completed')))
      .prepare(),
    insertReply: db
      .insert(messages)
      .values({
        id: p('id'),
        threadId: p('threadId'),
        runId: p('runId'),
        role: 'assistant',
        content: p('content'),
        seq: p('seq'),
        createdAt: p('now'),
      })
      .prepare(),
    countReply: db
      .update(threads)
      .set({ messageCount: sql`${threads.messageCount} + 1`, updatedAt: sql`${p('now')}` })
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    finish: db
      .update(runs)
      .set({
        status: sql`${p('status')}`,
        attempts: sql`${p('attempts')}`,
        error: sql`${p('error')}`,
        usage: sql`${p('usage')}`,
        replyMessageId: sql`${p('replyId')}`,
        finishedAt: sql`${p('now')}`,
      })
      .where(eq(runs.id, p('id')))
      .prepare(),
    next: db
      .select({ id: runs.id })
      .from(runs)
      .where(
        and(
          eq(runs.threadId, p('threadId')),
          inArray(runs.status, UNFINISHED_RUN_STATUSES),
          ne(runs.id, p('id')),
        ),
      )
      .orderBy(asc(runs.seq))
      .limit(1)
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
    handEnqueue: handEnqueueStatement(db),
  }));

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

export async function getRun(db: Db, runId: string): Promise<Run | undefined> {
  return statements(db).getRun.get({ id: runId });
}

export async function getRunWithReply(
  db: Db,
  runId: string,
): Promise<{ run: Run; reply: Message | null } | undefined> {
  const run = db.select().from(runs).where(eq(runs.id, runId)).get();
  if (!run) return undefined;
  const reply = run.replyMessageId
    ? (db.select().from(messages).where(eq(messages.id, run.replyMessageId)).get() ?? null)
    : null;
  return { run, reply };
}

export async function startRunAttempt(db: Db, runId: string, now: Date): Promise<Run | null> {
  const q = statements(db);
  return commitWrite(db, () => {
    const run = q.getRun.get({ id: runId });
    if (!run || run.status === 'completed') return null;
    return q.startAttempt.get({ id: runId, now: now.getTime() }) ?? null;
  });
}

export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: RunError,
): Promise<void> {
  const q = statements(db);
  await commitWrite(db, () => q.retry.run({ id: runId, attempts, error: json(error) }));
}

/**
 * See `Store.finishRun`. SQLite has one writer at a time: these steps and any request's
 * `insertRunRequest` cannot interleave, so no lock needs taking.
 */
export async function finishRun(db: Db, input: RunFinish): Promise<OutboxRow | null> {
  const { runId, reply } = input;
  const now = input.now.getTime();
  const q = statements(db);
  return commitWrite(db, () => {
    // 1. The run: none, or finished already (another delivery of the job finished it first).
    const run = q.getRun.get({ id: runId });
    if (!run || isFinishedStatus(run.status)) return null;
    // 2. The reply, in the slot after its user message, counted on the thread.
    if (reply) {
      q.insertReply.run({
        id: reply.id,
        threadId: run.threadId,
        runId,
        content: reply.content,
        seq: run.seq + 1,
        now: input.now,
      });
      q.countReply.run({ threadId: run.threadId, now });
    }
    // 3. The run's end.
    q.finish.run({
      id: runId,
      status: reply ? 'completed' : 'failed',
      attempts: input.attempts,
      error: json(input.error),
      usage: json(input.usage),
      replyId: reply?.id ?? null,
      now,
    });
    // 4. The thread's next unfinished run.
    const next = q.next.get({ threadId: run.threadId, id: runId });
    // 5. Its announcement still in the outbox: that row enqueues it, after the announcement.
    const handed = next ? q.handEnqueue.get({ runId: next.id }) : undefined;
    // 6. The terminal event's row, with the next run's job unless step 5 handed it over.
    return (q.insertOutbox.get({
      ...input.event,
      enqueueRunId: handed ? null : (next?.id ?? null),
      now: input.now,
    }) ?? null) as OutboxRow | null;
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
    .limit(opts.limit + 1)
    .all();
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
    .limit(limit)
    .all();
}
