/**
 * How a run ends, on SQLite: its finish (a reply or an error), its cancel, and the per-thread
 * chain that follows either — the run that ends hands the thread's next unfinished run its job.
 * The other half of the chain is ingress (ingress.ts). Mirrors db/postgres/queries/run-ends.ts.
 */
import { and, asc, eq, lt, ne, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { Event, RunCancelRequest, RunCancelResult, RunEnd, RunFinish } from '../../store';
import { isFinishedStatus, isUnfinished, type RunCancel } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { messages, type OutboxRow, type Run, runs, threads } from '../schema';
import { handEnqueueStatement, insertOutboxStatement } from './outbox';

const p = sql.placeholder;
/** The statements that end runs (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'run-ends', (db) => ({
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare(),
    markCancelling: db
      .update(runs)
      .set({ status: 'cancelling', cancel: sql`${p('cancel')}` })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    markCancelled: db
      .update(runs)
      .set({
        status: 'cancelled',
        attempts: sql`${p('attempts')}`,
        cancel: sql`coalesce(${runs.cancel}, ${p('cancel')})`,
        action: null,
        finishedAt: sql`${p('now')}`,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    unfinished: db
      .select()
      .from(runs)
      .where(and(eq(runs.threadId, p('threadId')), isUnfinished(runs.status)))
      .orderBy(asc(runs.seq))
      .prepare(),
    // By slot: a run's user message is the one message at its even slot, and its steps are at
    // the odd slot after it; (thread_id, seq) leads the unique index of places.
    deleteMessages: db
      .delete(messages)
      .where(
        and(
          eq(messages.threadId, p('threadId')),
          sql`${messages.seq} IN (SELECT value FROM json_each(${p('seqs')}))`,
        ),
      )
      .returning({ id: messages.id })
      .prepare(),
    uncount: db
      .update(threads)
      .set({ messageCount: sql`${threads.messageCount} - ${p('count')}` })
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    earlier: db
      .select({ id: runs.id })
      .from(runs)
      .where(
        and(eq(runs.threadId, p('threadId')), isUnfinished(runs.status), lt(runs.seq, p('seq'))),
      )
      .limit(1)
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
        position: p('position'),
        tokens: p('tokens'),
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
        steps: sql`coalesce(${p('steps')}, ${runs.steps})`,
        toolCallCount: sql`coalesce(${p('toolCallCount')}, ${runs.toolCallCount})`,
        memory: sql`coalesce(${p('memory')}, ${runs.memory})`,
        replyMessageId: sql`${p('replyId')}`,
        // A paused run fails past its deadline: it waits for nothing any more.
        action: null,
        finishedAt: sql`${p('now')}`,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    next: db
      .select({ id: runs.id })
      .from(runs)
      .where(and(eq(runs.threadId, p('threadId')), isUnfinished(runs.status), ne(runs.id, p('id'))))
      .orderBy(asc(runs.seq))
      .limit(1)
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
    handEnqueue: handEnqueueStatement(db),
  }));

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

/**
 * See `Store.finishRun`. SQLite has one writer at a time: these steps and any request's
 * `insertRunRequest` cannot interleave, so no lock needs taking.
 */
export async function finishRun(db: Db, input: RunFinish): Promise<RunEnd | null> {
  const { runId, reply, event } = input;
  const now = input.now.getTime();
  const q = statements(db);
  return commitWrite(db, () => {
    // 1. The run: none, or finished already (another delivery of the job finished it first).
    const run = q.getRun.get({ id: runId });
    if (!run || isFinishedStatus(run.status)) return null;
    // A cancel that came first wins: the run ends cancelled, with no reply.
    if (run.status === 'cancelling' || !event) {
      return endCancelled(q, run, { attempts: input.attempts, now: input.now }, input);
    }
    // 2. The reply, in the slot after its user message (after the run's steps there), counted
    // on the thread.
    if (reply) {
      q.insertReply.run({
        id: reply.id,
        threadId: run.threadId,
        runId,
        content: reply.content,
        seq: run.seq + 1,
        position: reply.position,
        tokens: reply.tokens,
        now: input.now,
      });
      q.countReply.run({ threadId: run.threadId, now });
    }
    // 3. The run's end.
    const status = reply ? 'completed' : 'failed';
    const ended = q.finish.get({
      id: runId,
      status,
      attempts: input.attempts,
      error: json(input.error),
      usage: json(input.usage),
      steps: input.steps ?? null,
      toolCallCount: input.toolCallCount ?? null,
      memory: json(input.memory),
      replyId: reply?.id ?? null,
      now,
    });
    // 4. The thread's next unfinished run.
    const next = q.next.get({ threadId: run.threadId, id: runId });
    // 5. Its announcement still in the outbox: that row enqueues it, after the announcement.
    const handed = next ? q.handEnqueue.get({ runId: next.id }) : undefined;
    // 6. The terminal event's row, with the next run's job unless step 5 handed it over.
    const row = q.insertOutbox.get({
      ...event,
      enqueueRunId: handed ? null : (next?.id ?? null),
      now: input.now,
    }) as OutboxRow;
    return { status, run: ended as Run, row };
  });
}

/** See `Store.cancelRun`. */
export async function cancelRun(
  db: Db,
  input: RunCancelRequest,
): Promise<RunCancelResult | undefined> {
  const q = statements(db);
  return commitWrite(db, (): RunCancelResult | undefined => {
    const run = q.getRun.get({ id: input.runId });
    if (!run) return undefined;
    if (run.status === 'completed' || run.status === 'failed') return { kind: 'finished', run };
    if (run.status === 'cancelled') return { kind: 'cancelled', run, row: null };
    if (run.status === 'cancelling') return { kind: 'cancelling', run };
    if (run.status === 'running') {
      const marked = q.markCancelling.get({ id: run.id, cancel: json(input.cancel) }) as Run;
      return { kind: 'cancelling', run: marked };
    }
    const ended = endCancelled(q, run, { attempts: run.attempts, now: input.now }, input);
    return { kind: 'cancelled', run: ended.run, row: ended.row };
  });
}

/**
 * Cancels every unfinished run of a thread for a newer message (`interrupt`, `rollback`),
 * inside the caller's transaction: queued and paused runs end cancelled, running ones are
 * marked cancelling (their workers end them); with `deleteMessages` (`rollback`) their messages
 * go too (the user message and any steps a running or paused run had committed), so no later
 * prompt sees them.
 */
export function cancelThreadRuns(
  db: Db,
  input: {
    threadId: string;
    cancel: RunCancel;
    now: Date;
    cancelledEvent: (run: Run) => Event;
    deleteMessages: boolean;
  },
): { ended: RunEnd[]; cancelling: Run[] } {
  const q = statements(db);
  const ended: RunEnd[] = [];
  const cancelling: Run[] = [];
  const unfinished = q.unfinished.all({ threadId: input.threadId });
  for (const run of unfinished) {
    // A paused run holds no worker: it ends at once, as a queued one does.
    if (run.status === 'queued' || run.status === 'requires_action') {
      ended.push(endCancelled(q, run, { attempts: run.attempts, now: input.now }, input, false));
    } else if (run.status === 'running') {
      cancelling.push(q.markCancelling.get({ id: run.id, cancel: json(input.cancel) }) as Run);
    } else {
      cancelling.push(run); // cancelling already: its first cancel stays
    }
  }
  if (input.deleteMessages && unfinished.length > 0) {
    const seqs = unfinished.flatMap((run) => [run.seq, run.seq + 1]);
    const deleted = q.deleteMessages.all({ threadId: input.threadId, seqs: JSON.stringify(seqs) });
    q.uncount.run({ threadId: input.threadId, count: deleted.length });
  }
  return { ended, cancelling };
}

/**
 * Ends a queued, paused or cancelling run cancelled, inside the caller's transaction: the run's
 * end (a paused run's action cleared) and its `agent.run.cancelled` row. If the run was its
 * thread's head (no unfinished run before it), that row enqueues the thread's next run, or hands
 * its job to that run's undelivered announcement, as `finishRun` does; a run cancelled while
 * waiting behind another leaves the chain to the head. Without `moveOn` the row enqueues nothing
 * (a newer message cancelled it, and that message's run decides its own job).
 */
function endCancelled(
  q: ReturnType<typeof statements>,
  run: Run,
  end: { attempts: number; now: Date },
  input: { cancel?: RunCancel; cancelledEvent: (run: Run) => Event },
  moveOn = true,
): RunEnd {
  const cancelled = q.markCancelled.get({
    id: run.id,
    attempts: end.attempts,
    cancel: json(input.cancel ?? run.cancel),
    now: end.now.getTime(),
  }) as Run;
  const wasHead = moveOn && !q.earlier.get({ threadId: run.threadId, seq: run.seq });
  const next = wasHead ? q.next.get({ threadId: run.threadId, id: run.id }) : undefined;
  const handed = next ? q.handEnqueue.get({ runId: next.id }) : undefined;
  const row = q.insertOutbox.get({
    ...input.cancelledEvent(cancelled),
    enqueueRunId: handed ? null : (next?.id ?? null),
    now: end.now,
  }) as OutboxRow;
  return { status: 'cancelled', run: cancelled, row };
}
