import type { Store } from '../../db/store';
import type { WebhookDelivery, WebhookStatus } from '../../db/types';
import { AppError, notFound } from '../errors';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { DELIVERIES_PAGE, type DeliveryView } from './model';
import type { WebhookSender } from './sender';

export function toDeliveryView(delivery: WebhookDelivery): DeliveryView {
  return {
    id: delivery.id,
    webhookId: delivery.eventId,
    url: delivery.url,
    eventType: delivery.eventType,
    runId: delivery.runId,
    threadId: delivery.threadId,
    status: delivery.status,
    attempts: delivery.attempts,
    lastStatusCode: delivery.lastStatusCode,
    lastError: delivery.lastError,
    nextAttemptAt: delivery.status === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
    createdAt: delivery.createdAt.toISOString(),
    updatedAt: delivery.updatedAt.toISOString(),
    deliveredAt: delivery.deliveredAt?.toISOString() ?? null,
  };
}

/** The delivery log, newest first, by an opaque cursor (`{createdAt, id}` of a page's last). */
export async function listDeliveries(
  db: Store,
  query: { runId?: string; status?: WebhookStatus; limit?: number; cursor?: string },
) {
  const limit = query.limit ?? DELIVERIES_PAGE.default;
  const at = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const rows = await db.listWebhookDeliveries({
    runId: query.runId,
    status: query.status,
    limit: limit + 1,
    after: at && { createdAt: at.at, id: at.id },
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    deliveries: page.map(toDeliveryView),
    nextCursor:
      rows.length > limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
  };
}

/** Makes a delivery due now, with the same body and `webhook-id`; this process sends it. */
export async function redeliver(
  deps: { db: Store; webhooks: Pick<WebhookSender, 'kick'> },
  deliveryId: string,
): Promise<DeliveryView> {
  const result = await deps.db.redeliverWebhook(deliveryId, new Date());
  if (result.kind === 'unknown') throw notFound('delivery', deliveryId);
  if (result.kind === 'in_flight') {
    throw new AppError(
      'delivery_in_flight',
      `delivery "${deliveryId}" is being attempted right now; ask again once it has ended`,
      { status: result.delivery.status, attempts: result.delivery.attempts },
    );
  }
  deps.webhooks.kick();
  return toDeliveryView(result.delivery);
}
