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
import { isFinishedStatus, isUnfinished, type RunCancel, UNFINISHED_SQL } from '../../types';
import { clientOf, type Db, type Tx } from '../database';
import { type Conn, commitWrite } from '../group-commit';
import { Params, runFromRow } from '../raw-rows';
import { messages, type Run, runs, threads } from '../schema';
import { storable } from '../storable';
import { handEnqueueStatement, insertedOutboxRow, insertOutbox, outboxInsertCtes } from './outbox';
import { UNFINISHED } from './runs';
import { webhooksOf } from './webhooks';

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

/** The run, locked with its thread (see `insertRunRequest` for why the thread), as `lockRun`. */
const LOCK_RUN = `
  select runs.* from runs inner join threads on threads.id = runs.thread_id
  where runs.id = $1 for update`;

/**
 * See `Store.finishRun`. Its thread is locked before it looks for the next run, as
 * `insertRunRequest` locks it before it asks whether a run is unfinished: see there for why.
 * A unit of the group commit (db/postgres/group-commit.ts), ordered by the event's thread: the
 * lock goes out with the group, the finish is one statement. A run found cancelling (or a
 * finish with no event) ends cancelled, which takes the drizzle path below: that transaction
 * locks and reads the run again.
 */
export async function finishRun(db: Db, input: RunFinish): Promise<RunEnd | null> {
  const { event } = input;
  if (event) {
    const finished = await commitWrite(clientOf(db), {
      threadId: event.threadId,
      run: (conn) => finishLocked(conn, input, event, webhooksOf(db)),
    });
    if (finished !== 'cancelling') return finished;
  }
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, input.runId);
    if (!run || isFinishedStatus(run.status)) return null;
    return endCancelled(
      tx,
      run,
      { attempts: input.attempts, now: input.now },
      { ...input, webhooks: webhooksOf(db) },
    );
  });
}

async function finishLocked(
  conn: Conn,
  input: RunFinish,
  event: Event,
  webhooks: WebhookTargets,
): Promise<RunEnd | null | 'cancelling'> {
  const { runId, reply } = input;
  const now = input.now.toISOString();
  // 1. The run: none, or finished already (another delivery of the job finished it first).
  // Locked, and its thread with it.
  const [locked] = await conn.query(LOCK_RUN, [runId]);
  const run = locked ? runFromRow(locked) : undefined;
  if (!run || isFinishedStatus(run.status)) return null;
  // A cancel that came first wins: the run ends cancelled, with no reply.
  if (run.status === 'cancelling') return 'cancelling';
  // Steps 2 to 6 are the parts of one statement: one round trip.
  const params = new Params();
  const id = params.add(runId);
  const thread = params.add(run.threadId);
  const at = `${params.add(now)}::timestamptz`;
  // 2. The reply, in the slot after its user message (after the run's steps there), counted
  // on the thread.
  const storeReply = reply
    ? `
      stored_reply as (
        insert into messages (id, thread_id, run_id, role, content, seq, position, tokens,
                              created_at)
        values (${params.add(reply.id)}, ${thread}, ${id}, 'assistant', ${params.add(reply.content)},
                ${params.add(run.seq + 1)}::integer, ${params.add(reply.position)}::integer,
                ${params.add(reply.tokens)}::integer, ${at})
      ),
      counted as (
        update threads set message_count = message_count + 1, updated_at = ${at}
        where id = ${thread}
      ),`
    : '';
  // 3. The run's end.
  const status = reply ? 'completed' : 'failed';
  const finished = `
    finished as (
      update runs set status = ${params.add(status)}, attempts = ${params.add(input.attempts)}::integer,
        error = ${params.add(json(input.error))}::text::jsonb, usage = ${params.add(json(input.usage))}::text::jsonb,
        steps = coalesce(${params.add(input.steps ?? null)}::integer, steps),
        tool_call_count = coalesce(${params.add(input.toolCallCount ?? null)}::integer, tool_call_count),
        memory = coalesce(${params.add(json(input.memory))}::text::jsonb, memory),
        reply_message_id = ${params.add(reply?.id ?? null)}::text, action = null,
        finished_at = ${at}
      where id = ${id}
    )`;
  // 4. The thread's next unfinished run.
  const next = `
    next_run as (
      select id from runs
      where thread_id = ${thread} and status in ${UNFINISHED_SQL} and id <> ${id}
      order by seq limit 1
    )`;
  // 5. Its announcement still in the outbox: that row enqueues it, after the announcement.
  const handed = `
    handed as (
      update outbox set enqueue_run_id = run_id
      where run_id = (select id from next_run) and type = 'agent.run.requested'
        and delivered_at is null
      returning id
    )`;
  // 6. The terminal event's row, with the next run's job unless step 5 handed it over.
  const row = outboxInsertCtes(
    params,
    event,
    'case when exists (select 1 from handed) then null else (select id from next_run) end',
    now,
    webhooks,
  );
  const [inserted] = await conn.query(
    `with ${storeReply} ${finished}, ${next}, ${handed}, ${row}
     select id, enqueue_run_id from stored`,
    params.values,
  );
  if (!inserted) throw new Error('outbox insert returned no row');
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
  return { status, run: ended, row: insertedOutboxRow(event, inserted as never, input.now) };
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
        update runs set status = 'cancelling', cancel = ${json(input.cancel)}::text::jsonb
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
    .where(and(eq(runs.threadId, input.threadId), isUnfinished(runs.status)))
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
        update runs set status = 'cancelling', cancel = ${json(input.cancel)}::text::jsonb
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
        cancel = ${json(cancel)}::text::jsonb, action = null, finished_at = ${now}::timestamptz
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
