import { and, asc, eq, inArray, isNull, lt, or, type SQL, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { DeliveredOutboxRow, Event, WebhookTargets } from '../../store';
import type { Db, Tx } from '../database';
import type { Conn } from '../group-commit';
import { outboxFromRow, type Params } from '../raw-rows';
import { type OutboxRow, outbox } from '../schema';
import { deliveriesCte, writeDeliveries } from './webhooks';

const p = sql.placeholder;
/** The relay's statements, run for every batch it delivers (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'outbox', (db) => ({
    markDelivered: db
      .update(outbox)
      .set({ deliveredAt: sql`${p('now')}::timestamptz` })
      .where(sql`${outbox.id} = any(${p('ids')}::bigint[])`)
      .returning({ id: outbox.id, threadId: outbox.threadId, enqueueRunId: outbox.enqueueRunId })
      .prepare('mark_outbox_delivered'),
  }));

/**
 * See `Store.claimPendingOutbox`. SKIP LOCKED lets relays in several processes claim at the
 * same moment without waiting on each other: each takes rows the others have not locked.
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
    .limit(limit)
    .for('update', { skipLocked: true });
  const rows = await db
    .update(outbox)
    .set({ claimedUntil: new Date(now.getTime() + leaseMs) })
    .where(inArray(outbox.id, claimable))
    .returning();
  return rows.sort((a, b) => a.id - b.id);
}

/**
 * Marks a delivered batch in one statement, prepared once, outside the group commit: a mark
 * that waited for a group let a retried attempt find its earlier attempt's rows undelivered
 * and send them again (seen as a second `started`). The ids travel as one array: one statement
 * for every length of batch, not an IN list rebuilt for each.
 */
export async function markOutboxDelivered(db: Db, ids: number[]): Promise<DeliveredOutboxRow[]> {
  if (ids.length === 0) return [];
  return statements(db).markDelivered.execute({ now: new Date().toISOString(), ids });
}

/**
 * Hands a run's job to its own `agent.run.requested` row while that row is undelivered (see
 * `Store.finishRun`); returns no row when the row is out already. Pending rows are few, and the
 * `outbox_run_pending` index finds them. A part of `finishRun`'s one statement (a WITH query), so
 * `runId` is SQL: the select of the next run.
 */
export function handEnqueueStatement(runId: SQL) {
  return sql`
        update outbox set enqueue_run_id = run_id
        where run_id = ${runId} and type = 'agent.run.requested'
          and delivered_at is null
        returning id`;
}

/**
 * Inserts one outbox row and returns it, with the event's webhook deliveries (`webhooks`: see
 * `writeDeliveries`); shared by ingress and the run job. In the caller's transaction, so not
 * prepared (see db/prepared.ts).
 */
export async function insertOutbox(
  tx: Tx,
  event: Event,
  enqueueRunId: string | null,
  now: Date,
  webhooks: WebhookTargets,
): Promise<OutboxRow> {
  const [row] = await tx
    .insert(outbox)
    .values({ ...event, enqueueRunId, createdAt: now })
    .returning();
  if (!row) throw new Error('outbox insert returned no row');
  await writeDeliveries(tx, webhooks, event, now);
  return row;
}

/**
 * `insertOutbox` as parts of one WITH query for the hot writes that send their SQL to the driver:
 * the row's insert (`stored`, returning its id and `enqueue_run_id`) and its webhook deliveries
 * (see `deliveriesCte`). `enqueueRunId` is SQL: a parameter, or what the statement decides.
 */
export function outboxInsertCtes(
  params: Params,
  event: Event,
  enqueueRunId: string,
  now: string,
  webhooks: WebhookTargets,
  runWebhookUrl?: string | null,
): string {
  return `
    stored as (
      insert into outbox (event_id, type, run_id, thread_id, occurred_at, payload, enqueue_run_id,
                          created_at)
      values (${params.add(event.eventId)}, ${params.add(event.type)}, ${params.add(event.runId)},
              ${params.add(event.threadId)}, ${params.add(event.occurredAt)}, ${params.add(event.payload)},
              ${enqueueRunId}, ${params.add(now)}::timestamptz)
      returning id, enqueue_run_id
    )${deliveriesCte(params, webhooks, event, now, runWebhookUrl)}`;
}

/** The outbox row a `stored` CTE of `outboxInsertCtes` inserted, from its id and enqueued run. */
export const insertedOutboxRow = (
  event: Event,
  inserted: { id: unknown; enqueue_run_id: unknown },
  now: Date,
): OutboxRow => ({
  id: Number(inserted.id),
  eventId: event.eventId,
  type: event.type,
  runId: event.runId,
  threadId: event.threadId,
  occurredAt: event.occurredAt,
  payload: event.payload,
  enqueueRunId: (inserted.enqueue_run_id as string | null) ?? null,
  createdAt: now,
  deliveredAt: null,
  claimedUntil: null,
});

/** `pendingRows` on a connection of the hot writes (see db/postgres/group-commit.ts). */
export async function pendingRowsOn(conn: Conn, runId: string): Promise<OutboxRow[]> {
  const rows = await conn.query(
    `select * from outbox where delivered_at is null and run_id = $1 order by id`,
    [runId],
  );
  return rows.map(outboxFromRow);
}

/**
 * A run's rows still undelivered, oldest first: what an earlier attempt committed and did not
 * get out before its process died (see `Store.startRunAttempt`).
 */
export function pendingRows(tx: Tx, runId: string): Promise<OutboxRow[]> {
  return tx
    .select()
    .from(outbox)
    .where(and(isNull(outbox.deliveredAt), eq(outbox.runId, runId)))
    .orderBy(asc(outbox.id));
}
