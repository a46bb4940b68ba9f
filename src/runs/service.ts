import type { RunEnd, Store } from '../../db/store';
import type { FinishedRunStatus, Message, Run } from '../../db/types';
import { AppError, notFound } from '../errors';
import { buildEvent } from '../events/event';
import type { Publisher } from '../events/outbox-relay';
import type { RunFailure } from '../failures';
import { toMessageView } from '../messages/view';
import type { Metrics } from '../metrics/metrics';
import type { RunView, ThreadRunsPage } from './model';

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
    tools: run.tools,
    // Names only: the client declared the schemas itself, and a view of many runs stays small.
    clientTools: run.clientTools.map((tool) => tool.name),
    pendingAction:
      run.status === 'requires_action' && run.action
        ? {
            kind: run.action.kind,
            toolCalls: run.action.toolCalls.map(({ toolCallId, name, arguments: args }) => ({
              toolCallId,
              name,
              arguments: args,
            })),
            deadline: run.action.deadline,
          }
        : null,
    steps: run.steps,
    toolCalls: run.toolCallCount,
    memory: run.memory ?? null,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}

/** What ending a run needs: the store, the publisher, the metrics. */
export type RunEndDeps = { db: Store; publisher: Publisher; metrics: Metrics };

/**
 * A thread's runs, newest first, paged like its messages: the newest `limit` (default 50), or
 * those before the run `before`, which must be a run of this thread.
 */
export async function listThreadRuns(
  db: Store,
  threadId: string,
  query: { limit?: number; before?: string },
): Promise<ThreadRunsPage> {
  const thread = await db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  let beforeSeq: number | undefined;
  if (query.before !== undefined) {
    const cursor = await db.getRun(query.before);
    if (!cursor || cursor.threadId !== threadId) {
      throw new AppError('invalid_cursor', `"${query.before}" is not a run of this thread`);
    }
    beforeSeq = cursor.seq;
  }
  const page = await db.listThreadRuns(threadId, { limit: query.limit ?? 50, beforeSeq });
  return {
    threadId,
    runs: page.runs.map(({ run, reply }) => toRunView(run, reply)),
    hasMore: page.hasMore,
    nextBefore: page.hasMore ? (page.runs.at(-1)?.run.id ?? null) : null,
  };
}

/**
 * Makes a run failed and announces it: the run job when it gives up, and the two safety nets
 * (the worker's `failed` listener, the reconciler) when a job failed outside the run. A run
 * that was being cancelled ends cancelled instead. Returns how it ended (undefined: it had ended
 * already).
 */
export async function failRun(
  deps: RunEndDeps,
  run: Pick<Run, 'id' | 'threadId'>,
  attempts: number,
  error: RunFailure,
): Promise<FinishedRunStatus | undefined> {
  const now = new Date();
  const end = await deps.db.finishRun({
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
    cancelledEvent: cancelledEvent(now),
  });
  return end ? announceEnd(deps, end) : undefined;
}

/** `agent.run.cancelled`, made from the run as the store ends it (its cancel and attempts). */
export function cancelledEvent(now: Date) {
  return (run: Run) =>
    buildEvent(
      'agent.run.cancelled',
      { runId: run.id, threadId: run.threadId },
      {
        reason: run.cancel?.reason ?? null,
        by: run.cancel?.by ?? 'client',
        attempts: run.attempts,
      },
      now,
    );
}

/** Counts a run's end and delivers its terminal event (the relay does if Redis is away). */
export async function announceEnd(deps: RunEndDeps, end: RunEnd): Promise<FinishedRunStatus> {
  deps.metrics.runsFinished.inc({ status: end.status });
  if (end.status === 'cancelled')
    deps.metrics.runsCancelled.inc({ by: end.run.cancel?.by ?? 'client' });
  await deps.publisher.deliver(end.row);
  return end.status;
}
