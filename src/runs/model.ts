import { t } from 'elysia';
import { CANCELLED_BY, RUN_STATUSES } from '../../db/types';
import { messageView } from '../messages/model';

export const runParams = t.Object({ runId: t.String() });

const nullableDate = t.Nullable(t.String({ format: 'date-time' }));

export const runView = t.Object({
  id: t.String(),
  threadId: t.String(),
  userMessageId: t.String(),
  model: t.String(),
  status: t.UnionEnum(RUN_STATUSES),
  attempts: t.Integer({ description: 'Attempts spent; a rate-limited try spends none.' }),
  error: t.Nullable(t.Object({ code: t.String(), message: t.String() })),
  reply: t.Nullable(messageView),
  usage: t.Nullable(
    t.Object({
      promptTokens: t.Integer(),
      completionTokens: t.Integer(),
      totalTokens: t.Integer(),
    }),
  ),
  cancel: t.Nullable(
    t.Object(
      {
        reason: t.Nullable(t.String()),
        by: t.UnionEnum(CANCELLED_BY),
        requestedAt: t.String({ format: 'date-time' }),
      },
      { description: 'Set once a cancel was asked for (by the client, or by a newer message).' },
    ),
  ),
  createdAt: t.String({ format: 'date-time' }),
  startedAt: nullableDate,
  finishedAt: nullableDate,
});
export type RunView = typeof runView.static;

export const cancelBody = t.Object(
  {
    reason: t.Optional(
      t.Nullable(
        t.String({
          maxLength: 500,
          description: 'Why, in up to 500 characters: kept on the run and in agent.run.cancelled.',
        }),
      ),
    ),
  },
  { additionalProperties: false, examples: [{ reason: 'the user pressed stop' }] },
);
export type CancelBody = typeof cancelBody.static;

export const cancelledRun = t.Object(
  {
    runId: t.String(),
    status: t.UnionEnum(['cancelled', 'cancelling'], {
      description:
        'cancelled: it had not started, and is over; cancelling: its worker is stopping it, and ' +
        'it ends cancelled.',
    }),
  },
  { examples: [{ runId: 'run_h2k9x0c3v7b1n5m8q4w6e2r1', status: 'cancelling' }] },
);
export type CancelledRun = typeof cancelledRun.static;
