import type { Store } from '../../db/store';
import { notFound } from '../errors';
import { toMessageView } from '../messages/view';

export async function getRunView(db: Store, runId: string) {
  const found = await db.getRunWithReply(runId);
  if (!found) throw notFound('run', runId);
  const { run, reply } = found;
  return {
    id: run.id,
    threadId: run.threadId,
    userMessageId: run.userMessageId,
    model: run.model,
    status: run.status,
    attempts: run.attempts,
    error: run.error ?? null,
    reply: reply ? toMessageView(reply) : null,
    usage: run.usage ?? null,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}
