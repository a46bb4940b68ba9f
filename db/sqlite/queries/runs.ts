import { and, asc, desc, eq, lt, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import { prepared } from '../../prepared';
import type { RunAttempt, RunError, RunStart } from '../../store';
import { isUnfinished } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { type Message, messages, type OutboxRow, type Run, runs } from '../schema';
import { insertOutboxStatement, pendingRowsStatement } from './outbox';

const p = sql.placeholder;
/** The run job's statements (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'runs', (db) => ({
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare(),
    // A resumed run (its client answered) goes on without spending an attempt.
    startAttempt: db
      .update(runs)
      .set({
        status: 'running',
        attempts: sql`${runs.attempts} + case when ${runs.resumed} then 0 else 1 end`,
        resumed: false,
        startedAt: sql`coalesce(${runs.startedAt}, ${p('now')})`,
        finishedAt: null,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    retry: db
      .update(runs)
      .set({ status: 'queued', attempts: sql`${p('attempts')}`, error: sql`${p('error')}` })
      .where(and(eq(runs.id, p('id')), eq(runs.status, 'running')))
      .returning({ id: runs.id })
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
    pendingRows: pendingRowsStatement(db),
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

/** See `Store.startRunAttempt`: the attempt and its announcement, in one unit. */
export async function startRunAttempt(db: Db, input: RunStart): Promise<RunAttempt | null> {
  const q = statements(db);
  return commitWrite(db, () => {
    const run = q.getRun.get({ id: input.runId });
    if (!run || run.status === 'completed' || run.status === 'cancelled') return null;
    // Only a run tried before can have rows an earlier attempt left behind.
    const earlier = run.attempts > 0 ? q.pendingRows.all({ runId: input.runId }) : [];
    // Nothing to start: a cancelling run is only ended, a paused one waits for its client.
    if (run.status === 'cancelling' || run.status === 'requires_action') {
      return { run, row: null, earlier, firstClaim: false };
    }
    const started = q.startAttempt.get({ id: input.runId, now: input.now.getTime() }) as Run;
    const row = q.insertOutbox.get({
      ...input.startedEvent(started, run.resumed),
      enqueueRunId: null,
      now: input.now,
    }) as OutboxRow;
    return { run: started, row, earlier, firstClaim: run.startedAt === null };
  });
}

export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: RunError,
): Promise<boolean> {
  const q = statements(db);
  const retried = await commitWrite(db, () =>
    q.retry.get({ id: runId, attempts, error: json(error) }),
  );
  return retried !== undefined;
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
        isUnfinished(runs.status),
        notExists(
          db
            .select({ one: sql`1` })
            .from(earlier)
            .where(
              and(
                eq(earlier.threadId, runs.threadId),
                isUnfinished(earlier.status),
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
