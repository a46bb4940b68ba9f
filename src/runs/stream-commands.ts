import { AppError } from '../errors';
import type { StreamCommands } from '../events/stream-consumer';
import { type CancelDeps, cancelRun, parseCancelBody } from './cancel';

/**
 * The commands runs carries out for producers on the stream: `agent.run.cancel_requested` is
 * the same as POST /api/chat/runs/:runId/cancel, its payload (`{reason?}`, or none) checked by
 * the same schema, its refusals the same errors.
 */
export function runStreamCommands(deps: CancelDeps): StreamCommands {
  return {
    'agent.run.cancel_requested': async ({ runId, payload }) => {
      if (!runId) throw new AppError('invalid_request', 'runId is required');
      const { reason } = parseCancelBody(payload);
      const cancelled = await cancelRun(deps, runId, { reason });
      return { runId, threadId: cancelled.threadId };
    },
  };
}
