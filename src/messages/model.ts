import { t } from 'elysia';

/** A stored message as the API shows it: in a thread's pages and as a run's reply. */
export const messageView = t.Object({
  id: t.String(),
  threadId: t.String(),
  runId: t.String(),
  role: t.UnionEnum(['user', 'assistant']),
  content: t.String(),
  createdAt: t.String({ format: 'date-time' }),
});
export type MessageView = typeof messageView.static;
