import { and, asc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { DeliveredOutboxRow } from '../../store';
import type { Db } from '../client';
import { commitWrite } from '../group-commit';
import { type OutboxRow, outbox } from '../schema';

/**
 * See `Store.claimPendingOutbox`. SQLite has one writer at a time, so the select and the lease
 * in one UPDATE are atomic across every process on the file.
 */
export async function claimPendingOutbox(
  db: Db,
  createdBefore: Date,
  limit: number,
  leaseMs: number,
): Promise<OutboxRow[]> {
  const now = new Date();
  const claimable = db
    .select({ id: outbox.id })
    .from(outbox)
    .where(
      and(
        isNull(outbox.deliveredAt),
        lt(outbox.createdAt, createdBefore),
        or(isNull(outbox.claimedUntil), lt(outbox.claimedUntil, now)),
      ),
    )
    .orderBy(asc(outbox.id))
    .limit(limit);
  const rows = await commitWrite(db, () =>
    db
      .update(outbox)
      .set({ claimedUntil: new Date(now.getTime() + leaseMs) })
      .where(inArray(outbox.id, claimable))
      .returning()
      .all(),
  );
  return rows.sort((a, b) => a.id - b.id);
}

/**
 * Marks a delivered batch in one statement (the ids travel as one JSON array, so the statement
 * is prepared once rather than rebuilt for every length of IN list). It joins whatever else
 * commits in this turn: no commit of its own under load.
 */
export async function markOutboxDelivered(db: Db, ids: number[]): Promise<DeliveredOutboxRow[]> {
  const mark = prepared(db, 'markOutboxDelivered', (db) =>
    db
      .update(outbox)
      .set({ deliveredAt: sql`${sql.placeholder('now')}` }) // epoch ms, as the column stores
      .where(sql`${outbox.id} IN (SELECT value FROM json_each(${sql.placeholder('ids')}))`)
      .returning({ id: outbox.id, threadId: outbox.threadId, enqueueRunId: outbox.enqueueRunId })
      .prepare(),
  );
  return commitWrite(db, () => mark.all({ now: Date.now(), ids: JSON.stringify(ids) }));
}

/**
 * Hands a run's job to its own `agent.run.requested` row while that row is undelivered (see
 * `Store.finishRun`); undefined when the row is out already. Pending rows are few, and the
 * `outbox_pending` index finds them.
 */
export function handEnqueueStatement(db: Db) {
  return db
    .update(outbox)
    .set({ enqueueRunId: sql`${outbox.runId}` })
    .where(
      and(
        eq(outbox.runId, sql.placeholder('runId')),
        eq(outbox.type, 'agent.run.requested'),
        isNull(outbox.deliveredAt),
      ),
    )
    .returning({ id: outbox.id })
    .prepare();
}

/** Inserts one outbox row and returns it; prepared, shared by ingress and the run job. */
export function insertOutboxStatement(db: Db) {
  const p = sql.placeholder;
  return db
    .insert(outbox)
    .values({
      eventId: p('eventId'),
      type: p('type'),
      runId: p('runId'),
      threadId: p('threadId'),
      occurredAt: p('occurredAt'),
      payload: p('payload'),
      enqueueRunId: p('enqueueRunId'),
      createdAt: p('now'),
    })
    .returning()
    .prepare();
}
