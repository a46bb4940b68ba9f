import { createId } from '@paralleldrive/cuid2';
import { and, desc, eq, isNull, lt, lte, or, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type {
  Event,
  WebhookAttempt,
  WebhookDeliveryQuery,
  WebhookRedelivery,
  WebhookTargets,
} from '../../store';
import { NO_WEBHOOKS } from '../../store';
import { deliveryEvent, isRunEvent } from '../../webhook-event';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { runs, type WebhookDelivery, webhookDeliveries } from '../schema';

const p = sql.placeholder;
const targetsByDb = new WeakMap<Db, WebhookTargets>();

/** Given when the store opens: who gets the webhooks of the events this database stores. */
export function setWebhookTargets(db: Db, targets: WebhookTargets) {
  targetsByDb.set(db, targets);
}

const statements = (db: Db) =>
  prepared(db, 'webhooks', (db) => {
    const values = {
      id: p('id'),
      eventId: p('eventId'),
      eventType: p('eventType'),
      runId: p('runId'),
      threadId: p('threadId'),
      event: p('event'),
    };
    return {
      toUrl: db
        .insert(webhookDeliveries)
        .values({
          ...values,
          url: p('url'),
          nextAttemptAt: p('now'),
          createdAt: p('now'),
          updatedAt: p('now'),
        })
        .onConflictDoNothing()
        .prepare(),
      // The run's own URL, read in the same transaction: no caller has to carry it.
      toRunUrl: db
        .insert(webhookDeliveries)
        .select(
          db
            .select({
              id: sql`${p('id')}`.as('id'),
              eventId: sql`${p('eventId')}`.as('event_id'),
              eventType: sql`${p('eventType')}`.as('event_type'),
              runId: runs.id,
              threadId: runs.threadId,
              url: sql`${runs.webhookUrl}`.as('url'),
              event: sql`${p('event')}`.as('event'),
              body: sql`null`.as('body'),
              status: sql`'pending'`.as('status'),
              attempts: sql`0`.as('attempts'),
              nextAttemptAt: sql`${p('nowMs')}`.as('next_attempt_at'),
              claimedUntil: sql`null`.as('claimed_until'),
              lastStatusCode: sql`null`.as('last_status_code'),
              lastError: sql`null`.as('last_error'),
              createdAt: sql`${p('nowMs')}`.as('created_at'),
              updatedAt: sql`${p('nowMs')}`.as('updated_at'),
              deliveredAt: sql`null`.as('delivered_at'),
            })
            .from(runs)
            .where(and(eq(runs.id, p('runId')), sql`${runs.webhookUrl} is not null`)),
        )
        .onConflictDoNothing()
        .prepare(),
      deleteOfThread: db
        .delete(webhookDeliveries)
        .where(eq(webhookDeliveries.threadId, p('threadId')))
        .prepare(),
      get: db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, p('id')))
        .prepare(),
    };
  });

/**
 * Writes the deliveries of one stored event, in the caller's transaction (see `WebhookTargets`).
 * A no-op, without a statement, for an event no one is sent.
 */
export function writeDeliveries(db: Db, event: Event, now: Date) {
  const targets = targetsByDb.get(db) ?? NO_WEBHOOKS;
  if (!targets.events.includes(event.type)) return;
  const q = statements(db);
  const row = {
    eventId: event.eventId,
    eventType: event.type,
    runId: event.runId,
    threadId: event.threadId,
    event: deliveryEvent(event),
  };
  if (targets.url) q.toUrl.run({ ...row, id: newDeliveryId(), url: targets.url, now });
  if (targets.perRun && isRunEvent(event.type)) {
    q.toRunUrl.run({ ...row, id: newDeliveryId(), nowMs: now.getTime() });
  }
}

export const newDeliveryId = () => `whd_${createId()}`;

/** Part of a thread's deletion (`deleteThread`): the deliveries of its events so far. */
export function deleteThreadDeliveries(db: Db, threadId: string) {
  statements(db).deleteOfThread.run({ threadId });
}

/** See `Store.claimDueWebhooks`: one UPDATE, atomic across every process on the file. */
export function claimDueWebhooks(
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
    .limit(limit);
  return commitWrite(db, () =>
    db
      .update(webhookDeliveries)
      .set({ claimedUntil: new Date(now.getTime() + leaseMs) })
      .where(sql`${webhookDeliveries.id} IN ${due}`)
      .returning()
      .all(),
  );
}

/** See `Store.recordWebhookAttempt`. */
export async function recordWebhookAttempt(db: Db, attempt: WebhookAttempt): Promise<boolean> {
  const updated = await commitWrite(db, () =>
    db
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
      .returning({ id: webhookDeliveries.id })
      .all(),
  );
  return updated.length > 0;
}

/** See `Store.listWebhookDeliveries`: by `webhook_deliveries_created` or `_run`. */
export function listWebhookDeliveries(
  db: Db,
  query: WebhookDeliveryQuery,
): Promise<WebhookDelivery[]> {
  const { after } = query;
  return Promise.resolve(
    db
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
      .limit(query.limit)
      .all(),
  );
}

/** See `Store.redeliverWebhook`. */
export function redeliverWebhook(db: Db, id: string, now: Date): Promise<WebhookRedelivery> {
  return commitWrite(db, (): WebhookRedelivery => {
    const [queued] = db
      .update(webhookDeliveries)
      .set({ status: 'pending', nextAttemptAt: now, updatedAt: now })
      .where(
        and(
          eq(webhookDeliveries.id, id),
          or(isNull(webhookDeliveries.claimedUntil), lt(webhookDeliveries.claimedUntil, now)),
        ),
      )
      .returning()
      .all();
    if (queued) return { kind: 'queued', delivery: queued };
    const held = statements(db).get.get({ id });
    return held ? { kind: 'in_flight', delivery: held } : { kind: 'unknown' };
  });
}
