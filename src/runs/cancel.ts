import type { RunEnd } from '../../db/store';
import type { CancelledBy, Run } from '../../db/types';
import type { RunQueue } from '../../jobs/catalog';
import { AppError, notFound } from '../errors';
import { bodyChecker } from '../http/body-check';
import type { Logger } from '../logger';
import type { CancelSignals } from './cancel-signals';
import { type CancelBody, type CancelledRun, cancelBody } from './model';
import { announceEnd, cancelledEvent, type RunEndDeps } from './service';

export interface CancelDeps extends RunEndDeps {
  queue: RunQueue;
  cancels: CancelSignals;
  logger: Logger;
}

/**
 * Cancels a run (`POST /api/chat/runs/:runId/cancel`, the stream's `agent.run.cancel_requested`).
 * A queued run — waiting its turn, for its job, or in a retry's backoff — is cancelled in this
 * call's transaction, and its job is taken out of the queue so that it never runs (if a worker
 * is picking it up right now, it finds the run cancelled and does nothing). A running run is
 * marked `cancelling`, and the process whose worker holds it is told through Redis; that worker
 * aborts the model call and ends the run cancelled. Either way the answer means the run ends
 * `cancelled`. A completed or failed run is a 409 `run_finished`; a second cancel is answered
 * like the first and changes nothing.
 */
export async function cancelRun(
  deps: CancelDeps,
  runId: string,
  opts: { reason?: string | null; by?: CancelledBy } = {},
): Promise<CancelledRun & { threadId: string }> {
  const now = new Date();
  const result = await deps.db.cancelRun({
    runId,
    cancel: {
      reason: opts.reason ?? null,
      by: opts.by ?? 'client',
      requestedAt: now.toISOString(),
    },
    now,
    cancelledEvent: cancelledEvent(now),
  });
  if (!result) throw notFound('run', runId);
  const { run } = result;
  if (result.kind === 'finished') {
    throw new AppError('run_finished', `run "${runId}" has ${run.status} already`, {
      status: run.status,
    });
  }
  await settleCancels(
    deps,
    result.kind === 'cancelled' && result.row
      ? [{ status: 'cancelled', run, row: result.row }]
      : [],
    result.kind === 'cancelling' ? [run] : [],
  );
  deps.logger.info({ runId, threadId: run.threadId, status: run.status }, 'run cancel accepted');
  return { runId, threadId: run.threadId, status: result.kind };
}

/**
 * What follows a committed cancel, here or at ingress (`multitask`): the runs that ended
 * cancelled are announced and their jobs taken out of the queue, so that they never run (a job
 * a worker is picking up right now finds its run cancelled and does nothing); the workers of the
 * runs that are cancelling are told to stop.
 */
export async function settleCancels(deps: CancelDeps, ended: RunEnd[], cancelling: Run[]) {
  for (const end of ended) {
    await announceEnd(deps, end);
    await deps.queue.remove(end.run.id).catch((error: unknown) => {
      deps.logger.debug({ err: error, runId: end.run.id }, 'a cancelled run’s job stays; it skips');
    });
  }
  if (cancelling.length > 0) await deps.cancels.publish(cancelling.map((run) => run.id));
}

const checkCancelBody = bodyChecker(cancelBody);

/** A cancel command's payload from the stream (none is `{}`), checked by the HTTP route's schema. */
export function parseCancelBody(value: unknown): CancelBody {
  return checkCancelBody(value ?? {});
}
