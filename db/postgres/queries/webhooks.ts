import { createId } from '@paralleldrive/cuid2';
import { and, desc, eq, inArray, isNull, lt, lte, or, sql } from 'drizzle-orm';
import type {
  Event,
  WebhookAttempt,
  WebhookDeliveryQuery,
  WebhookRedelivery,
  WebhookTargets,
} from '../../store';
import { NO_WEBHOOKS } from '../../store';
import { deliveryEvent, isRunEvent } from '../../webhook-event';
import type { Db, Tx } from '../database';
import type { Params } from '../raw-rows';
import { type WebhookDelivery, webhookDeliveries } from '../schema';

/**
 * The PostgreSQL side of webhook deliveries: mirrors db/sqlite/queries/webhooks.ts (see the
 * comments there).
 */
const targetsByDb = new WeakMap<Db, WebhookTargets>();

export function setWebhookTargets(db: Db, targets: WebhookTargets) {
  targetsByDb.set(db, targets);
}

/** Who gets webhooks from this database's events: what its queries hand `insertOutbox`. */
export function webhooksOf(db: Db): WebhookTargets {
  return targetsByDb.get(db) ?? NO_WEBHOOKS;
}

const newDeliveryId = () => `whd_${createId()}`;

/**
 * Writes the deliveries of one stored event, in the caller's transaction: one statement for
 * both targets (WEBHOOK_URL, and the run's own URL read from its row); none for an event no one
 * is sent.
 */
export async function writeDeliveries(
  tx: Tx,
  targets: WebhookTargets,
  event: Event,
  now: Date,
): Promise<void> {
  if (!targets.events.includes(event.type)) return;
  const perRun = targets.perRun && isRunEvent(event.type);
  if (!targets.url && !perRun) return;
  const body = deliveryEvent(event);
  const at = now.toISOString();
  await tx.execute(sql`
    insert into webhook_deliveries
      (id, event_id, event_type, run_id, thread_id, url, event, next_attempt_at, created_at,
       updated_at)
    select t.id, ${event.eventId}, ${event.type}, ${event.runId}, ${event.threadId}, t.url,
           ${body}, ${at}::timestamptz, ${at}::timestamptz, ${at}::timestamptz
    from (
      select ${newDeliveryId()}::text as id, ${targets.url}::text as url
      where ${targets.url !== null}
      union all
      select ${newDeliveryId()}::text, webhook_url from runs
      where ${perRun} and id = ${event.runId} and webhook_url is not null
    ) t
    on conflict (event_id, url) do nothing`);
}

/**
 * `writeDeliveries` as a part of the statement that inserts the event's outbox row (a WITH
 * query of the hot writes, see `outboxInsertCtes`): the same rows, no statement of its own. ''
 * when no one is sent the event. `runWebhookUrl`: the run's own URL when the caller knows it
 * (ingress, whose run row the same statement inserts, so a read of it would not see it); else
 * it is read from the run's row.
 */
export function deliveriesCte(
  params: Params,
  targets: WebhookTargets,
  event: Event,
  at: string,
  runWebhookUrl?: string | null,
): string {
  if (!targets.events.includes(event.type)) return '';
  const perRun = targets.perRun && isRunEvent(event.type);
  const sources: string[] = [];
  if (targets.url !== null) {
    sources.push(
      `select ${params.add(newDeliveryId())}::text as id, ${params.add(targets.url)}::text as url`,
    );
  }
  if (perRun && runWebhookUrl === undefined) {
    sources.push(
      `select ${params.add(newDeliveryId())}::text as id, webhook_url as url from runs where id = ${params.add(event.runId)} and webhook_url is not null`,
    );
  } else if (perRun && runWebhookUrl !== null) {
    sources.push(
      `select ${params.add(newDeliveryId())}::text as id, ${params.add(runWebhookUrl)}::text as url`,
    );
  }
  if (sources.length === 0) return '';
  const ts = `${params.add(at)}::timestamptz`;
  return `,
    deliveries as (
      insert into webhook_deliveries
        (id, event_id, event_type, run_id, thread_id, url, event, next_attempt_at, created_at,
         updated_at)
      select t.id, ${params.add(event.eventId)}, ${params.add(event.type)}, ${params.add(event.runId)},
             ${params.add(event.threadId)}, t.url, ${params.add(deliveryEvent(event))}, ${ts}, ${ts}, ${ts}
      from (${sources.join(' union all ')}) t
      on conflict (event_id, url) do nothing
    )`;
}

/** Part of a thread's deletion (`deleteThread`): the deliveries of its events so far. */
export async function deleteThreadDeliveries(tx: Tx, threadId: string) {
  await tx.delete(webhookDeliveries).where(eq(webhookDeliveries.threadId, threadId));
}

/** See `Store.claimDueWebhooks`. SKIP LOCKED: senders of several processes never wait on each other. */
export async function claimDueWebhooks(
  db: Db,
  now: Date,
  limit: number,
  leaseMs: number,
): Promise<WebhookDelivery[]> {
  const due = db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.status, 'pending'),
        lte(webhookDeliveries.nextAttemptAt, now),
        or(isNull(webhookDeliveries.claimedUntil), lt(webhookDeliveries.claimedUntil, now)),
      ),
    )
    .orderBy(webhookDeliveries.nextAttemptAt)
    .limit(limit)
    .for('update', { skipLocked: true });
  return db
    .update(webhookDeliveries)
    .set({ claimedUntil: new Date(now.getTime() + leaseMs) })
    .where(inArray(webhookDeliveries.id, due))
    .returning();
}

export async function recordWebhookAttempt(db: Db, attempt: WebhookAttempt): Promise<boolean> {
  const updated = await db
    .update(webhookDeliveries)
    .set({
      status: attempt.status,
      attempts: sql`${webhookDeliveries.attempts} + 1`,
      body: attempt.body,
      nextAttemptAt: attempt.nextAttemptAt,
      claimedUntil: null,
      lastStatusCode: attempt.statusCode,
      lastError: attempt.error,
      updatedAt: attempt.now,
      ...(attempt.status === 'delivered' ? { deliveredAt: attempt.now } : {}),
    })
    .where(
      and(
        eq(webhookDeliveries.id, attempt.id),
        eq(webhookDeliveries.claimedUntil, attempt.claimedUntil),
      ),
    )
    .returning({ id: webhookDeliveries.id });
  return updated.length > 0;
}

export function listWebhookDeliveries(
  db: Db,
  query: WebhookDeliveryQuery,
): Promise<WebhookDelivery[]> {
  const { after } = query;
  return db
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        query.runId === undefined ? undefined : eq(webhookDeliveries.runId, query.runId),
        query.status === undefined ? undefined : eq(webhookDeliveries.status, query.status),
        after === undefined
          ? undefined
          : or(
              lt(webhookDeliveries.createdAt, after.createdAt),
              and(
                eq(webhookDeliveries.createdAt, after.createdAt),
                lt(webhookDeliveries.id, after.id),
              ),
            ),
      ),
    )
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(query.limit);
}

async function getWebhookDelivery(db: Db, id: string): Promise<WebhookDelivery | undefined> {
  const [found] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
  return found;
}

export async function redeliverWebhook(db: Db, id: string, now: Date): Promise<WebhookRedelivery> {
  const [queued] = await db
    .update(webhookDeliveries)
    .set({ status: 'pending', nextAttemptAt: now, updatedAt: now })
    .where(
      and(
        eq(webhookDeliveries.id, id),
        or(isNull(webhookDeliveries.claimedUntil), lt(webhookDeliveries.claimedUntil, now)),
      ),
    )
    .returning();
  if (queued) return { kind: 'queued', delivery: queued };
  const held = await getWebhookDelivery(db, id);
  return held ? { kind: 'in_flight', delivery: held } : { kind: 'unknown' };
}
