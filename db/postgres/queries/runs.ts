import { and, asc, desc, eq, lt, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { prepared } from '../../prepared';
import type { RunAttempt, RunError, RunStart } from '../../store';
import { isUnfinished, UNFINISHED_SQL } from '../../types';
import { clientOf, type Db } from '../database';
import { commitWrite } from '../group-commit';
import { Params, runFromRow } from '../raw-rows';
import { type Message, messages, type Run, runs } from '../schema';
import { storable } from '../storable';
import { getMessage } from './messages';
import { insertedOutboxRow, outboxInsertCtes, pendingRowsOn } from './outbox';
import { webhooksOf } from './webhooks';

/** `UNFINISHED_SQL` for drizzle's `sql` templates. */
export const UNFINISHED = sql.raw(UNFINISHED_SQL);

/**
 * A run in these states is not started again: done, being ended by its cancel, or paused for
 * its client.
 */
const NOT_STARTABLE = ['completed', 'cancelled', 'cancelling', 'requires_action'] as const;

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
    retry: db
      .update(runs)
      .set({
        status: 'queued',
        attempts: sql`${p('attempts')}`,
        error: sql`${p('error')}::text::jsonb`,
      })
      .where(and(eq(runs.id, p('id')), eq(runs.status, 'running')))
      .returning({ id: runs.id })
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

/**
 * Claims the run for an attempt if it may start, with its old `resumed` as `was_resumed` and
 * whether it had never started as `first_claim`: both are only known before the update, and
 * RETURNING sees the new row. The old row is locked first. One statement all the same.
 */
const CLAIM_ATTEMPT = `
  with old as (
    select id, resumed, started_at from runs
    where id = $1 and status not in (${NOT_STARTABLE.map((s) => `'${s}'`).join(', ')})
    for update
  )
  update runs set status = 'running',
    attempts = runs.attempts + case when runs.resumed then 0 else 1 end,
    resumed = false, started_at = coalesce(runs.started_at, $2::timestamptz), finished_at = null
  from old where runs.id = old.id
  returning runs.*, old.resumed as was_resumed, old.started_at is null as first_claim`;

/**
 * See `Store.startRunAttempt`: the attempt and its announcement in one transaction, a unit of
 * the group commit (db/postgres/group-commit.ts): the claim goes out with the group's `begin`,
 * then what the attempt found decides the rest.
 */
export function startRunAttempt(db: Db, input: RunStart): Promise<RunAttempt | null> {
  if (!storable(input.runId)) return Promise.resolve(null);
  const now = input.now.toISOString();
  const webhooks = webhooksOf(db);
  return commitWrite(clientOf(db), {
    run: async (conn): Promise<RunAttempt | null> => {
      const [claimed] = await conn.query(CLAIM_ATTEMPT, [input.runId, now]);
      if (!claimed) {
        // Not started: unknown, done, cancelling (then this job only has to end it) or paused
        // for its client (then it waits on, or fails past its deadline).
        const [raw] = await conn.query('select * from runs where id = $1', [input.runId]);
        const found = raw ? runFromRow(raw) : undefined;
        if (found?.status !== 'cancelling' && found?.status !== 'requires_action') return null;
        const earlier = found.attempts > 0 ? await pendingRowsOn(conn, found.id) : [];
        return { run: found, row: null, earlier, firstClaim: false };
      }
      const run = runFromRow(claimed);
      const wasResumed = claimed.was_resumed as boolean;
      // Only a run tried before can have rows an earlier attempt left behind; read before this
      // attempt's row is inserted, in the same round trip.
      const triedBefore = wasResumed ? run.attempts > 0 : run.attempts > 1;
      const earlier = triedBefore ? pendingRowsOn(conn, run.id) : Promise.resolve([]);
      const event = input.startedEvent(run, wasResumed);
      const params = new Params();
      const text = `with ${outboxInsertCtes(params, event, 'null', now, webhooks)}
        select id, enqueue_run_id from stored`;
      const [row] = await Promise.all([
        conn.query(text, params.values),
        earlier.then(() => {}),
      ]).then(([rows]) => rows);
      if (!row) throw new Error('outbox insert returned no row');
      return {
        run,
        row: insertedOutboxRow(event, row as never, input.now),
        earlier: await earlier,
        firstClaim: claimed.first_claim === true,
      };
    },
  });
}

export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: RunError,
): Promise<boolean> {
  const q = statements(db);
  const retried = await q.retry.execute({ id: runId, attempts, error: json(error) });
  return retried.length > 0;
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
    .limit(limit);
}
