import { and, asc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { DeliveredOutboxRow, Event } from '../../store';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { type OutboxRow, outbox } from '../schema';
import { writeDeliveries } from './webhooks';

const p = sql.placeholder;
/** The relay's statements, run for every batch it delivers (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'outbox', (db) => ({
    // The ids travel as one JSON array: one statement for every length of batch, not an IN
    // list rebuilt for each.
    markDelivered: db
      .update(outbox)
      .set({ deliveredAt: sql`${p('now')}` }) // epoch ms, as the column stores
      .where(sql`${outbox.id} IN (SELECT value FROM json_each(${p('ids')}))`)
      .returning({ id: outbox.id, threadId: outbox.threadId, enqueueRunId: outbox.enqueueRunId })
      .prepare(),
  }));

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
 * Marks a delivered batch in one statement, prepared once. It joins whatever else commits in
 * this turn: no commit of its own under load.
 */
export async function markOutboxDelivered(db: Db, ids: number[]): Promise<DeliveredOutboxRow[]> {
  const q = statements(db);
  return commitWrite(db, () => q.markDelivered.all({ now: Date.now(), ids: JSON.stringify(ids) }));
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
        eq(outbox.runId, p('runId')),
        eq(outbox.type, 'agent.run.requested'),
        isNull(outbox.deliveredAt),
      ),
    )
    .returning({ id: outbox.id })
    .prepare();
}

/**
 * A run's rows still undelivered, oldest first: what an earlier attempt committed and did not
 * get out before its process died (see `Store.startRunAttempt`).
 */
export function pendingRowsStatement(db: Db) {
  return db
    .select()
    .from(outbox)
    .where(and(isNull(outbox.deliveredAt), eq(outbox.runId, p('runId'))))
    .orderBy(asc(outbox.id))
    .prepare();
}

/**
 * Inserts one outbox row and returns it, with the event's webhook deliveries (`writeDeliveries`)
 * in the same transaction; prepared, shared by ingress and the run job.
 */
export function insertOutboxStatement(db: Db) {
  const insert = insertStatement(db);
  return {
    get(params: Event & { enqueueRunId: string | null; now: Date }): OutboxRow {
      const row = insert.get(params) as OutboxRow;
      writeDeliveries(db, params, params.now);
      return row;
    },
  };
}

function insertStatement(db: Db) {
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
