import { AppError } from '../errors';
import type { StreamCommands } from '../events/stream-consumer';
import { type AnswerDeps, answerAction, parseApprovalsBody, parseToolOutputsBody } from './actions';
import { type CancelDeps, cancelRun, parseCancelBody } from './cancel';

/**
 * The commands runs carries out for producers on the stream: `agent.run.cancel_requested` is
 * the same as POST /api/chat/runs/:runId/cancel, its payload (`{reason?}`, or none) checked by
 * the same schema, its refusals the same errors; `agent.run.tool_outputs` (`{outputs}`) and
 * `agent.run.approvals` (`{decisions}`) are POST …/tool-outputs and POST …/approvals the same way.
 */
export function runStreamCommands(deps: CancelDeps & AnswerDeps): StreamCommands {
  return {
    'agent.run.tool_outputs': async ({ runId, payload }) => {
      if (!runId) throw new AppError('invalid_request', 'runId is required');
      const { outputs } = parseToolOutputsBody(payload);
      return answerAction(deps, runId, { kind: 'tool_outputs', outputs });
    },
    'agent.run.approvals': async ({ runId, payload }) => {
      if (!runId) throw new AppError('invalid_request', 'runId is required');
      const { decisions } = parseApprovalsBody(payload);
      return answerAction(deps, runId, { kind: 'approval', decisions });
    },
    'agent.run.cancel_requested': async ({ runId, payload }) => {
      if (!runId) throw new AppError('invalid_request', 'runId is required');
      const { reason } = parseCancelBody(payload);
      const cancelled = await cancelRun(deps, runId, { reason });
      return { runId, threadId: cancelled.threadId };
    },
  };
}
