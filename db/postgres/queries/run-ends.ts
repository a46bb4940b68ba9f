/**
 * How a run ends, on PostgreSQL: its finish (a reply or an error), its cancel, and the per-thread
 * chain that follows either — the run that ends hands the thread's next unfinished run its job.
 * The other half of the chain is ingress (ingress.ts). Mirrors db/sqlite/queries/run-ends.ts.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type {
  Event,
  RunCancelRequest,
  RunCancelResult,
  RunEnd,
  RunFinish,
  WebhookTargets,
} from '../../store';
import { isFinishedStatus, type RunCancel, UNFINISHED_RUN_STATUSES } from '../../types';
import type { Db, Tx } from '../database';
import { messages, type Run, runs, threads } from '../schema';
import { storable } from '../storable';
import { handEnqueueStatement, insertOutbox } from './outbox';
import { UNFINISHED } from './runs';
import { webhooksOf } from './webhooks';

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

/**
 * See `Store.finishRun`. Its thread is locked before it looks for the next run, as
 * `insertRunRequest` locks it before it asks whether a run is unfinished: see there for why.
 */
export function finishRun(db: Db, input: RunFinish): Promise<RunEnd | null> {
  const { runId, reply, event } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx) => {
    // 1. The run: none, or finished already (another delivery of the job finished it first).
    // Locked, and its thread with it.
    const run = await lockRun(tx, runId);
    if (!run || isFinishedStatus(run.status)) return null;
    // A cancel that came first wins: the run ends cancelled, with no reply.
    if (run.status === 'cancelling' || !event) {
      return endCancelled(
        tx,
        run,
        { attempts: input.attempts, now: input.now },
        { ...input, webhooks: webhooksOf(db) },
      );
    }
    // Steps 2 to 5 are the parts of one statement: one round trip.
    // 2. The reply, in the slot after its user message (after the run's steps there), counted
    // on the thread.
    const storeReply = reply
      ? sql`
        stored_reply as (
          insert into messages (id, thread_id, run_id, role, content, seq, position, tokens,
                                created_at)
          values (${reply.id}, ${run.threadId}, ${runId}, 'assistant', ${reply.content},
                  ${run.seq + 1}, ${reply.position}, ${reply.tokens}::integer, ${now}::timestamptz)
        ),
        counted as (
          update threads set message_count = message_count + 1, updated_at = ${now}::timestamptz
          where id = ${run.threadId}
        ),`
      : sql``;
    // 3. The run's end.
    const status = reply ? 'completed' : 'failed';
    const finished = sql`
      finished as (
        update runs set status = ${status}, attempts = ${input.attempts},
          error = ${json(input.error)}::jsonb, usage = ${json(input.usage)}::jsonb,
          steps = coalesce(${input.steps ?? null}::integer, steps),
          tool_call_count = coalesce(${input.toolCallCount ?? null}::integer, tool_call_count),
          memory = coalesce(${json(input.memory)}::jsonb, memory),
          reply_message_id = ${reply?.id ?? null}, action = null,
          finished_at = ${now}::timestamptz
        where id = ${runId}
      )`;
    // 4. The thread's next unfinished run.
    const next = sql`
      next_run as (
        select id from runs
        where thread_id = ${run.threadId} and status in ${UNFINISHED} and id <> ${runId}
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
    const row = await insertOutbox(
      tx,
      event,
      found?.handed ? null : (found?.id ?? null),
      input.now,
      webhooksOf(db),
    );
    const ended: Run = {
      ...run,
      status,
      attempts: input.attempts,
      error: input.error ?? null,
      usage: input.usage ?? null,
      steps: input.steps ?? run.steps,
      toolCallCount: input.toolCallCount ?? run.toolCallCount,
      memory: input.memory ?? run.memory,
      replyMessageId: reply?.id ?? null,
      action: null,
      finishedAt: input.now,
    };
    return { status, run: ended, row };
  });
}

/** See `Store.cancelRun`; the run and its thread are locked as in `finishRun`. */
export async function cancelRun(
  db: Db,
  input: RunCancelRequest,
): Promise<RunCancelResult | undefined> {
  if (!storable(input.runId)) return undefined;
  return db.transaction(async (tx): Promise<RunCancelResult | undefined> => {
    const run = await lockRun(tx, input.runId);
    if (!run) return undefined;
    if (run.status === 'completed' || run.status === 'failed') return { kind: 'finished', run };
    if (run.status === 'cancelled') return { kind: 'cancelled', run, row: null };
    if (run.status === 'cancelling') return { kind: 'cancelling', run };
    if (run.status === 'running') {
      await tx.execute(sql`
        update runs set status = 'cancelling', cancel = ${json(input.cancel)}::jsonb
        where id = ${run.id}`);
      return { kind: 'cancelling', run: { ...run, status: 'cancelling', cancel: input.cancel } };
    }
    const ended = await endCancelled(
      tx,
      run,
      { attempts: run.attempts, now: input.now },
      { ...input, webhooks: webhooksOf(db) },
    );
    return { kind: 'cancelled', run: ended.run, row: ended.row };
  });
}

/** The run, locked with its thread (see `insertRunRequest` for why the thread). */
export async function lockRun(tx: Tx, runId: string): Promise<Run | undefined> {
  const [locked] = await tx
    .select({ run: runs })
    .from(runs)
    .innerJoin(threads, eq(threads.id, runs.threadId))
    .where(eq(runs.id, runId))
    .for('update');
  return locked?.run;
}

/**
 * Cancels every unfinished run of a thread for a newer message (`interrupt`, `rollback`),
 * inside the caller's transaction, which holds the thread's lock: queued and paused runs end
 * cancelled, running ones are marked cancelling (their workers end them); with `deleteMessages`
 * (`rollback`) their messages go too (the user message and any steps a running or paused run
 * had committed), so no later prompt sees them.
 */
export async function cancelThreadRuns(
  tx: Tx,
  input: {
    threadId: string;
    cancel: RunCancel;
    now: Date;
    cancelledEvent: (run: Run) => Event;
    deleteMessages: boolean;
    webhooks: WebhookTargets;
  },
): Promise<{ ended: RunEnd[]; cancelling: Run[] }> {
  const ended: RunEnd[] = [];
  const cancelling: Run[] = [];
  const unfinished = await tx
    .select()
    .from(runs)
    .where(and(eq(runs.threadId, input.threadId), inArray(runs.status, UNFINISHED_RUN_STATUSES)))
    .orderBy(asc(runs.seq))
    .for('update');
  for (const run of unfinished) {
    // A paused run holds no worker: it ends at once, as a queued one does.
    if (run.status === 'queued' || run.status === 'requires_action') {
      ended.push(
        await endCancelled(tx, run, { attempts: run.attempts, now: input.now }, input, false),
      );
    } else if (run.status === 'running') {
      await tx.execute(sql`
        update runs set status = 'cancelling', cancel = ${json(input.cancel)}::jsonb
        where id = ${run.id}`);
      cancelling.push({ ...run, status: 'cancelling', cancel: input.cancel });
    } else {
      cancelling.push(run); // cancelling already: its first cancel stays
    }
  }
  if (input.deleteMessages && unfinished.length > 0) {
    // By slot: a run's user message is the one message at its even slot, and its steps are at
    // the odd slot after it; (thread_id, seq) leads the unique index of places.
    const seqs = unfinished.flatMap((run) => [run.seq, run.seq + 1]);
    const deleted = await tx
      .delete(messages)
      .where(and(eq(messages.threadId, input.threadId), inArray(messages.seq, seqs)))
      .returning({ id: messages.id });
    await tx.execute(sql`
      update threads set message_count = message_count - ${deleted.length}
      where id = ${input.threadId}`);
  }
  return { ended, cancelling };
}

/**
 * Ends a queued, paused or cancelling run cancelled, inside the caller's transaction: the run's
 * end (a paused run's action cleared) and its `agent.run.cancelled` row. If the run was its
 * thread's head (no unfinished run before it), that row enqueues the thread's next run, or hands
 * its job to that run's undelivered announcement, as `finishRun` does; a run cancelled while
 * waiting behind another leaves the chain to the head. Without `moveOn` the row enqueues nothing
 * (a newer message cancelled it, and that message's run decides its own job). One statement, as in
 * `finishRun`.
 */
async function endCancelled(
  tx: Tx,
  run: Run,
  end: { attempts: number; now: Date },
  input: { cancel?: RunCancel; cancelledEvent: (run: Run) => Event; webhooks: WebhookTargets },
  moveOn = true,
): Promise<RunEnd> {
  const cancel = run.cancel ?? input.cancel ?? null;
  const now = end.now.toISOString();
  const [found] = await tx.execute<{ id: string | null; handed: boolean }>(sql`
    with finished as (
      update runs set status = 'cancelled', attempts = ${end.attempts},
        cancel = ${json(cancel)}::jsonb, action = null, finished_at = ${now}::timestamptz
      where id = ${run.id}
    ),
    earlier as (
      select 1 from runs
      where thread_id = ${run.threadId} and status in ${UNFINISHED} and seq < ${run.seq}
      limit 1
    ),
    next_run as (
      select id from runs
      where thread_id = ${run.threadId} and status in ${UNFINISHED} and id <> ${run.id}
        and ${moveOn} and not exists (select 1 from earlier)
      order by seq limit 1
    ),
    handed as (${handEnqueueStatement(sql`(select id from next_run)`)}
    )
    select (select id from next_run) as id, exists (select 1 from handed) as handed`);
  const cancelled: Run = {
    ...run,
    status: 'cancelled',
    attempts: end.attempts,
    cancel,
    action: null,
    finishedAt: end.now,
  };
  const row = await insertOutbox(
    tx,
    input.cancelledEvent(cancelled),
    found?.handed ? null : (found?.id ?? null),
    end.now,
    input.webhooks,
  );
  return { status: 'cancelled', run: cancelled, row };
}
