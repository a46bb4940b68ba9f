import type { ThreadDetails } from '../../db/store';
import type { ThreadView } from './model';

export function toThreadView({ thread, busy, lastRunId }: ThreadDetails): ThreadView {
  return {
    id: thread.id,
    createdAt: thread.createdAt.toISOString(),
    updatedAt: thread.updatedAt.toISOString(),
    messageCount: thread.messageCount,
    title: thread.title,
    metadata: thread.metadata,
    status: busy ? 'busy' : 'idle',
    lastRunId,
    summary: thread.summary,
    summaryThroughMessageId: thread.summaryThroughMessageId,
  };
}
