import { t } from 'elysia';

/** A thread as the API shows it: GET thread, and a thread feed's reset. */
export const threadView = t.Object({
  id: t.String(),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
  messageCount: t.Integer(),
  title: t.Nullable(
    t.String({
      description:
        "The title model's, made after the thread's first completed run (CHAT_TITLE_MODEL, at " +
        "most 80 characters), or a user's, which is never overwritten; null until one is given.",
      examples: ['Planning a week in Kyoto'],
    }),
  ),
  summary: t.Nullable(t.String()),
  summaryThroughMessageId: t.Nullable(t.String()),
});
export type ThreadView = typeof threadView.static;
