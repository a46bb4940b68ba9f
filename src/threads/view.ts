import type { Thread } from '../../db/types';
import type { ThreadView } from './model';

export function toThreadView(thread: Thread): ThreadView {
  return {
    id: thread.id,
    createdAt: thread.createdAt.toISOString(),
    updatedAt: thread.updatedAt.toISOString(),
    messageCount: thread.messageCount,
    title: thread.title,
    summary: thread.summary,
    summaryThroughMessageId: thread.summaryThroughMessageId,
  };
}
