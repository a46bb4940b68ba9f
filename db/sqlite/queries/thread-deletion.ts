/**
 * A thread's deletion, on SQLite: its unfinished runs end cancelled, then everything of it goes
 * but the events that announce that. Mirrors db/postgres/queries/thread-deletion.ts.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { Event, ThreadDeletion } from '../../store';
import { isFinishedStatus, type RunCancel } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import {
  idempotencyKeys,
  messages,
  type OutboxRow,
  outbox,
  type Run,
  runs,
  threadMetadata,
  threads,
} from '../schema';
import { insertOutboxStatement } from './outbox';
import { deleteThreadDeliveries } from './webhooks';

const p = sql.placeholder;
/** The deletion's statements (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'thread-deletion', (db) => ({
    getThread: db
      .select({ id: threads.id })
      .from(threads)
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    runs: db
      .select()
      .from(runs)
      .where(eq(runs.threadId, p('threadId')))
      .orderBy(asc(runs.seq))
      .prepare(),
    // A cancel asked for before (a cancelling run's) stays; attempts stay as they are.
    markCancelled: db
      .update(runs)
      .set({
        status: 'cancelled',
        cancel: sql`coalesce(${runs.cancel}, ${p('cancel')})`,
        action: null,
        finishedAt: sql`${p('now')}`,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    deleteMessages: db
      .delete(messages)
      .where(eq(messages.threadId, p('threadId')))
      .prepare(),
    deleteRuns: db
      .delete(runs)
      .where(eq(runs.threadId, p('threadId')))
      .prepare(),
    deleteMetadata: db
      .delete(threadMetadata)
      .where(eq(threadMetadata.threadId, p('threadId')))
      .prepare(),
    // The keys have no thread column: the stored response names it. No index finds them, so
    // this scans the table; it holds only the keys of the last IDEMPOTENCY_TTL_MS (purged).
    deleteKeys: db
      .delete(idempotencyKeys)
      .where(sql`json_extract(${idempotencyKeys.response}, '$.threadId') = ${p('threadId')}`)
      .prepare(),
    // Every row of the thread but the cancelled runs' ones just written (their ids as one JSON
    // array). No index on thread_id: this scans the outbox.
    deleteOutbox: db
      .delete(outbox)
      .where(
        and(
          eq(outbox.threadId, p('threadId')),
          sql`${outbox.id} NOT IN (SELECT value FROM json_each(${p('keep')}))`,
        ),
      )
      .prepare(),
    deleteThread: db
      .delete(threads)
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

/**
 * See `Store.deleteThread`: one unit of the turn's group commit. SQLite has one writer at a
 * time, so no run of the thread can start, finish or be added between the cancels and the
 * deletes. The outbox rows written here keep the thread's id: the outbox has no foreign key to
 * threads, so they outlive it and the relay delivers them.
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
  const q = statements(db);
  const { threadId, now } = input;
  return commitWrite(db, (): ThreadDeletion | undefined => {
    if (!q.getThread.get({ threadId })) return undefined;
    // 0. The deliveries of its events so far: they carry its content. Those of the events
    // written below stay, to be sent.
    deleteThreadDeliveries(db, threadId);
    // 1. Its unfinished runs end cancelled, queued or running alike: nothing of theirs is left
    // to finish into. A running one's worker is told to stop after the commit (`cancelling`).
    const all = q.runs.all({ threadId });
    const cancel: RunCancel = {
      reason: null,
      by: 'thread_deleted',
      requestedAt: now.toISOString(),
    };
    const rows: OutboxRow[] = [];
    const cancelling: string[] = [];
    const cancelledRunIds: string[] = [];
    for (const run of all) {
      if (isFinishedStatus(run.status)) continue;
      const cancelled = q.markCancelled.get({
        id: run.id,
        cancel: JSON.stringify(cancel),
        now: now.getTime(),
      }) as Run;
      // No job rides on it: the thread has no next run any more.
      rows.push(
        q.insertOutbox.get({
          ...input.cancelledEvent(cancelled),
          enqueueRunId: null,
          now,
        }) as OutboxRow,
      );
      cancelledRunIds.push(run.id);
      if (run.status === 'running' || run.status === 'cancelling') cancelling.push(run.id);
    }
    // 2. Everything else of it; the thread last (the others refer to it).
    q.deleteMessages.run({ threadId });
    q.deleteRuns.run({ threadId });
    q.deleteMetadata.run({ threadId });
    q.deleteKeys.run({ threadId });
    q.deleteOutbox.run({ threadId, keep: JSON.stringify(rows.map((row) => row.id)) });
    q.deleteThread.run({ threadId });
    // 3. The deletion's own event.
    rows.push(
      q.insertOutbox.get({
        ...input.deletedEvent(cancelledRunIds),
        enqueueRunId: null,
        now,
      }) as OutboxRow,
    );
    return { rows, cancelling, runIds: all.map((run) => run.id), cancelledRunIds };
  });
}
