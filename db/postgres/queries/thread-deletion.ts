/**
 * A thread's deletion, on PostgreSQL: its unfinished runs end cancelled, then everything of it
 * goes but the events that announce that. Mirrors db/sqlite/queries/thread-deletion.ts.
 */
import { asc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import type { Event, ThreadDeletion } from '../../store';
import { isFinishedStatus, type RunCancel } from '../../types';
import type { Db } from '../database';
import { type OutboxRow, outbox, type Run, runs, threads } from '../schema';
import { storable } from '../storable';
import { insertOutbox } from './outbox';
import { deleteThreadDeliveries, webhooksOf } from './webhooks';

/**
 * See `Store.deleteThread`, in one transaction. The thread's row is locked first, then its runs,
 * in the order ingress takes them (the thread's upsert, then `cancelThreadRuns`): a message
 * for the thread waits for the deletion and then creates a new, empty thread of that id; a run's
 * start, step or finish waits and then finds no run. The outbox rows written here keep the
 * thread's id: the outbox has no foreign key to threads, so they outlive it and the relay
 * delivers them.
 */
export async function deleteThread(
  db: Db,
  input: {
    threadId: string;
    now: Date;
    cancelledEvent: (run: Run) => Event;
    deletedEvent: (cancelledRunIds: string[]) => Event;
  },
): Promise<ThreadDeletion | undefined> {
  const { threadId, now } = input;
  if (!storable(threadId)) return undefined;
  return db.transaction(async (tx): Promise<ThreadDeletion | undefined> => {
    const [thread] = await tx
      .select({ id: threads.id })
      .from(threads)
      .where(eq(threads.id, threadId))
      .for('update');
    if (!thread) return undefined;
    const webhooks = webhooksOf(db);
    // 0. The deliveries of its events so far: they carry its content. Those of the events
    // written below stay, to be sent.
    await deleteThreadDeliveries(tx, threadId);
    const all = await tx
      .select()
      .from(runs)
      .where(eq(runs.threadId, threadId))
      .orderBy(asc(runs.seq))
      .for('update');
    // 1. Its unfinished runs end cancelled, queued or running alike: nothing of theirs is left
    // to finish into. A running one's worker is told to stop after the commit (`cancelling`).
    // A cancel asked for before (a cancelling run's) stays; attempts stay as they are.
    const cancel: RunCancel = {
      reason: null,
      by: 'thread_deleted',
      requestedAt: now.toISOString(),
    };
    const unfinished = all.filter((run) => !isFinishedStatus(run.status));
    const cancelledRunIds = unfinished.map((run) => run.id);
    if (unfinished.length > 0) {
      await tx.execute(sql`
        update runs set status = 'cancelled', cancel = coalesce(cancel, ${JSON.stringify(cancel)}::text::jsonb),
          action = null, finished_at = ${now.toISOString()}::timestamptz
        where ${inArray(runs.id, cancelledRunIds)}`);
    }
    const rows: OutboxRow[] = [];
    for (const run of unfinished) {
      const cancelled: Run = {
        ...run,
        status: 'cancelled',
        cancel: run.cancel ?? cancel,
        action: null,
        finishedAt: now,
      };
      // No job rides on it: the thread has no next run any more.
      rows.push(await insertOutbox(tx, input.cancelledEvent(cancelled), null, now, webhooks));
    }
    const cancelling = unfinished
      .filter((run) => run.status === 'running' || run.status === 'cancelling')
      .map((run) => run.id);
    // 2. Everything else of it, in one statement; the thread last (the others refer to it).
    // The idempotency keys have no thread column: the stored response names it, and no index
    // finds it, so that part scans the table (it holds only the keys of the last
    // IDEMPOTENCY_TTL_MS). The outbox has no index on thread_id either: that part scans it.
    const keep = rows.map((row) => row.id);
    await tx.execute(sql`
      with deleted_messages as (delete from messages where thread_id = ${threadId}),
        deleted_runs as (delete from runs where thread_id = ${threadId}),
        deleted_metadata as (delete from thread_metadata where thread_id = ${threadId}),
        deleted_keys as (delete from idempotency_keys where response ->> 'threadId' = ${threadId}),
        deleted_outbox as (
          delete from outbox where thread_id = ${threadId} and ${notInArray(outbox.id, keep)}
        )
      delete from threads where id = ${threadId}`);
    // 3. The deletion's own event.
    rows.push(await insertOutbox(tx, input.deletedEvent(cancelledRunIds), null, now, webhooks));
    return { rows, cancelling, runIds: all.map((run) => run.id), cancelledRunIds };
  });
}
