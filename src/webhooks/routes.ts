import { Elysia } from 'elysia';
import type { Store } from '../../db/store';
import { errorResponse, errors } from '../http/error-schemas';
import {
  DELIVERIES_PAGE,
  deliveriesPage,
  deliveriesQuery,
  deliveryParams,
  deliveryView,
} from './model';
import type { WebhookSender } from './sender';
import { listDeliveries, redeliver } from './service';

/** The webhook delivery log and its redeliver button (docs/webhooks.md). */
export function webhookRoutes(deps: { db: Store; webhooks: Pick<WebhookSender, 'kick'> }) {
  return new Elysia({
    name: 'webhooks',
    prefix: '/api/webhooks',
    tags: ['webhooks'],
    normalize: false,
  })
    .get('/deliveries', ({ query }) => listDeliveries(deps.db, query), {
      query: deliveriesQuery,
      response: {
        200: deliveriesPage,
        400: errorResponse(
          ['invalid_request', 'invalid_cursor'],
          '`cursor` is not a nextCursor of this list (invalid_cursor), or `limit` is not an integer from 1 to 100, `status` is not pending, delivered or failed, or another parameter is given (invalid_request)',
        ),
        401: errors.unauthorized,
        503: errors.unavailable,
      },
      detail: {
        summary: 'The webhook delivery log, newest first',
        description:
          'Every delivery of every event to every URL (WEBHOOK_URL, and the URLs messages ' +
          'named): its status, attempts, last status code or error, and next attempt. Filter ' +
          `by \`runId\` and \`status\`; \`limit\` a page (default ${DELIVERIES_PAGE.default}, ` +
          `at most ${DELIVERIES_PAGE.max}); follow \`nextCursor\` (null on the last page).`,
      },
    })
    .post(
      '/deliveries/:deliveryId/redeliver',
      async ({ params, set }) => {
        const view = await redeliver(deps, params.deliveryId);
        set.status = 202;
        return view;
      },
      {
        params: deliveryParams,
        response: {
          202: deliveryView,
          401: errors.unauthorized,
          404: errors.notFound,
          409: errorResponse(['delivery_in_flight']),
          503: errors.unavailable,
        },
        detail: {
          summary: 'Send a delivery again, now',
          description:
            'Pending, delivered or failed alike: the delivery is made due now and sent with ' +
            'the same body and the same `webhook-id` (a receiver that keeps the ids it has seen ' +
            'knows it again), signed afresh. A failed one gets one more attempt. The answer is ' +
            'the delivery as it is queued; GET the log to see the attempt.',
        },
      },
    );
}
