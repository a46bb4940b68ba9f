import { t } from 'elysia';

/** `pending`, `delivered` or `failed` (db/run-columns.ts `WEBHOOK_STATUSES`). */
const webhookStatus = (options: { description?: string } = {}) =>
  t.Union([t.Literal('pending'), t.Literal('delivered'), t.Literal('failed')], options);

/** The delivery log's page size: default and most. */
export const DELIVERIES_PAGE = { default: 20, max: 100 } as const;

const deliveryExample = {
  id: 'whd_k2m9x7q4w1e8r5t3y6u0i2o4',
  webhookId: 'evt_n4b7v1c9x3z5l8k2j6h0g4f2',
  url: 'https://hooks.example.com/agent-runs',
  eventType: 'agent.run.completed',
  runId: 'run_p3o9i8u7y6t5r4e3w2q1a0s9',
  threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
  status: 'delivered',
  attempts: 2,
  lastStatusCode: 204,
  lastError: null,
  nextAttemptAt: null,
  createdAt: '2026-12-01T17:20:00.000Z',
  updatedAt: '2026-12-01T17:20:05.120Z',
  deliveredAt: '2026-12-01T17:20:05.120Z',
};

/** One delivery as the log shows it: where, what, how it went, and what comes next. */
export const deliveryView = t.Object(
  {
    id: t.String({ examples: ['whd_k2m9x7q4w1e8r5t3y6u0i2o4'] }),
    webhookId: t.String({
      description: "The `webhook-id` header of every attempt: the event's `eventId`.",
      examples: ['evt_n4b7v1c9x3z5l8k2j6h0g4f2'],
    }),
    url: t.String({ examples: ['https://hooks.example.com/agent-runs'] }),
    eventType: t.String({ examples: ['agent.run.completed'] }),
    runId: t.String(),
    threadId: t.String(),
    status: webhookStatus({
      description:
        '`pending`: waiting for its next attempt; `delivered`: a 2xx came back; `failed`: ' +
        'WEBHOOK_MAX_ATTEMPTS attempts failed (redeliver tries once more).',
    }),
    attempts: t.Integer(),
    lastStatusCode: t.Nullable(
      t.Integer({ description: "The receiver's last status code; null if none came." }),
    ),
    lastError: t.Nullable(
      t.String({
        description: 'What went wrong last: `HTTP 500`, a redirect, no answer within 10 s, …',
      }),
    ),
    nextAttemptAt: t.Nullable(
      t.String({ format: 'date-time', description: 'When a pending delivery is tried next.' }),
    ),
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({ format: 'date-time' }),
    deliveredAt: t.Nullable(t.String({ format: 'date-time' })),
  },
  {
    $id: 'WebhookDelivery',
    description: 'One delivery of an event to one URL, as the delivery log shows it.',
    examples: [deliveryExample],
  },
);
export type DeliveryView = typeof deliveryView.static;

export const deliveriesQuery = t.Object(
  {
    runId: t.Optional(t.String({ maxLength: 64, description: "Only this run's deliveries." })),
    status: t.Optional(webhookStatus()),
    limit: t.Optional(
      t.Integer({ minimum: 1, maximum: DELIVERIES_PAGE.max, default: DELIVERIES_PAGE.default }),
    ),
    cursor: t.Optional(t.String({ description: 'The `nextCursor` of the previous page.' })),
  },
  { additionalProperties: false },
);

export const deliveriesPage = t.Object(
  {
    deliveries: t.Array(deliveryView),
    nextCursor: t.Nullable(t.String({ description: 'Pass as `cursor` for the next page.' })),
  },
  {
    $id: 'WebhookDeliveriesPage',
    description: 'A page of the delivery log, newest first.',
    examples: [{ deliveries: [deliveryExample], nextCursor: null }],
  },
);

export const deliveryParams = t.Object({ deliveryId: t.String() });
