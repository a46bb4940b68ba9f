import { t } from 'elysia';

/** A thread as the API shows it: GET thread, and a thread feed's reset. */
export const threadView = t.Object({
  id: t.String(),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
  messageCount: t.Integer(),
  summary: t.Nullable(t.String()),
  summaryThroughMessageId: t.Nullable(t.String()),
});
export type ThreadView = typeof threadView.static;
