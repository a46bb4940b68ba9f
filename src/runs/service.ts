import type { Store } from '../../db/store';
import type { Message, Run } from '../../db/types';
import { notFound } from '../errors';
import { buildEvent } from '../events/event';
import type { Publisher } from '../events/outbox-relay';
import type { RunFailure } from '../failures';
import { toMessageView } from '../messages/view';
import type { Metrics } from '../metrics/metrics';
import type { RunView } from './model';

export async function getRunView(db: Store, runId: string): Promise<RunView> {
  const found = await db.getRunWithReply(runId);
  if (!found) throw notFound('run', runId);
  return toRunView(found.run, found.reply);
}

/** A run as the API shows it (GET run, the thread's runs, a feed's reset). */
export function toRunView(run: Run, reply: Message | null): RunView {
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
    cancel: run.cancel ?? null,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}

/**
 * Makes a run failed and announces it: the run job when it gives up, and the two safety nets
 * (the worker's `failed` listener, the reconciler) when a job failed outside the run.
 */
export async function failRun(
  deps: { db: Store; publisher: Publisher; metrics: Metrics },
  run: Pick<Run, 'id' | 'threadId'>,
  attempts: number,
  error: RunFailure,
): Promise<void> {
  const now = new Date();
  const row = await deps.db.finishRun({
    runId: run.id,
    now,
    attempts,
    error,
    event: buildEvent(
      'agent.run.failed',
      { runId: run.id, threadId: run.threadId },
      { error, attempts },
      now,
    ),
  });
  if (!row) return;
  deps.metrics.runsFinished.inc({ status: 'failed' });
  await deps.publisher.deliver(row);
}
