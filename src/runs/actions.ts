import type { NewStepMessage, Store } from '../../db/store';
import type { Run, RunAction } from '../../db/types';
import type { RunQueue } from '../../jobs/catalog';
import type { Config } from '../config';
import { AppError, notFound } from '../errors';
import { buildEvent, type StreamEvent, TOOL_RESULT_EVENT_CHARS } from '../events/event';
import type { Publisher } from '../events/outbox-relay';
import { bodyChecker } from '../http/body-check';
import { newMessageId } from '../ids';
import type { Logger } from '../logger';
import { messageTokens } from '../memory/tokens';
import { isStorableText } from '../storable-text';
import { capOutput } from '../tools/output';
import {
  type AnsweredRun,
  type ApprovalsBody,
  approvalsBody,
  type ToolOutputsBody,
  toolOutputsBody,
} from './model';

export interface AnswerDeps {
  db: Store;
  publisher: Publisher;
  queue: RunQueue;
  logger: Logger;
  config: Config;
}

/** A client's answer to a paused run: its tool outputs, or its decisions on server tool calls. */
export type ActionAnswer =
  | { kind: 'tool_outputs'; outputs: ToolOutputsBody['outputs'] }
  | { kind: 'approval'; decisions: ApprovalsBody['decisions'] };

/** What a denied call gives the model, before the client's reason. */
export const DENIED = 'denied by the user';

/**
 * Answers a run in `requires_action` (`POST …/tool-outputs`, `POST …/approvals`, and the stream's
 * `agent.run.tool_outputs` / `agent.run.approvals`). The answer must name every pending call
 * exactly once; anything else is refused before anything is written. The store then takes the
 * answer in one transaction only if the run still waits for that very pause (`since`): two
 * answers racing, or an answer racing a cancel or the action's timeout, settle one way. The
 * results are delivered at once (the relay does it if Redis is away), and the run's delayed job
 * is promoted so that a worker picks it up now rather than at the deadline.
 */
export async function answerAction(
  deps: AnswerDeps,
  runId: string,
  answer: ActionAnswer,
): Promise<AnsweredRun & { threadId: string }> {
  const run = await deps.db.getRun(runId);
  if (!run) throw notFound('run', runId);
  const action = run.action;
  if (run.status !== 'requires_action' || !action || action.kind !== answer.kind) {
    throw notWaiting(run, answer.kind);
  }
  const ids =
    answer.kind === 'tool_outputs'
      ? answer.outputs.map((output) => output.toolCallId)
      : answer.decisions.map((decision) => decision.toolCallId);
  checkAnswerIds(action, ids);
  checkAnswerText(answer);

  const now = new Date();
  const ctx = { run, action, now };
  const settled =
    answer.kind === 'tool_outputs'
      ? settleOutputs(deps, ctx, answer.outputs)
      : settleDecisions(ctx, answer.decisions);
  const result = await deps.db.answerRun({
    runId,
    now,
    kind: answer.kind,
    since: action.since,
    messages: settled.messages,
    events: settled.events,
    approved: settled.approved,
    toolCallCount: run.toolCallCount + settled.messages.length,
  });
  if (result.kind === 'unknown') throw notFound('run', runId); // deleted meanwhile
  if (result.kind === 'not_waiting') throw notWaiting(result.run, answer.kind);
  // One turn: the publisher sends them together, in order.
  await Promise.all(result.rows.map((row) => deps.publisher.deliver(row)));
  await wakeJob(deps, runId);
  deps.logger.info(
    { runId, threadId: run.threadId, kind: answer.kind, toolCalls: ids.length },
    'run answered',
  );
  return { runId, threadId: run.threadId, status: 'queued' };
}

function notWaiting(run: Run, kind: ActionAnswer['kind']): AppError {
  const what = kind === 'tool_outputs' ? 'tool outputs' : 'approvals';
  const waitingFor =
    run.status === 'requires_action' && run.action
      ? `it waits for ${run.action.kind === 'tool_outputs' ? 'tool outputs' : 'approvals'}`
      : `it is ${run.status}`;
  return new AppError(
    'run_not_waiting',
    `run "${run.id}" is not waiting for ${what}: ${waitingFor}`,
    {
      status: run.status,
    },
  );
}

/** Every pending call exactly once: the ids missing, unknown or repeated are named. */
function checkAnswerIds(action: RunAction, ids: string[]) {
  const pending = new Set(action.toolCalls.map((call) => call.toolCallId));
  const seen = new Set<string>();
  const repeated = new Set<string>();
  const unknown = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) repeated.add(id);
    seen.add(id);
    if (!pending.has(id)) unknown.add(id);
  }
  const missing = [...pending].filter((id) => !seen.has(id));
  if (missing.length === 0 && unknown.size === 0 && repeated.size === 0) return;
  const named = (label: string, list: string[]) =>
    list.length === 0 ? [] : [`${label} ${list.map((id) => `"${id}"`).join(', ')}`];
  throw new AppError(
    'invalid_request',
    `the answer must name every pending tool call exactly once: ${[
      ...named('missing', missing),
      ...named('unknown', [...unknown]),
      ...named('repeated', [...repeated]),
    ].join('; ')}`,
    { missing, unknown: [...unknown], repeated: [...repeated] },
  );
}

/** Outputs and reasons are stored as messages: text every store keeps, as at ingress. */
function checkAnswerText(answer: ActionAnswer) {
  const texts =
    answer.kind === 'tool_outputs'
      ? answer.outputs.map((output) => ({ id: output.toolCallId, text: output.output }))
      : answer.decisions.map((decision) => ({
          id: decision.toolCallId,
          text: decision.reason ?? '',
        }));
  const bad = texts.find(({ text }) => !isStorableText(text));
  if (bad) {
    throw new AppError(
      'invalid_request',
      `the answer for "${bad.id}" must be text without NUL characters or unpaired surrogates`,
      { toolCallId: bad.id },
    );
  }
}

interface AnswerContext {
  run: Run;
  action: RunAction;
  now: Date;
}

interface Settled {
  messages: NewStepMessage[];
  events: StreamEvent[];
  approved: string[];
}

/** A tool result in the run's slot at its call's place, and its event. */
function result(
  { run, action, now }: AnswerContext,
  call: RunAction['toolCalls'][number],
  content: string,
  isError: boolean,
  into: Settled,
) {
  into.messages.push({
    id: newMessageId(),
    position: call.position,
    role: 'tool',
    content,
    toolCallId: call.toolCallId,
    name: call.name,
    isError,
    tokens: messageTokens({ content, name: call.name }),
  });
  into.events.push(
    buildEvent(
      'agent.run.tool_result',
      { runId: run.id, threadId: run.threadId },
      {
        step: action.step,
        toolCallId: call.toolCallId,
        name: call.name,
        isError,
        output: content.slice(0, TOOL_RESULT_EVENT_CHARS),
        // The client's own time: from the pause to its answer.
        durationMs: Math.max(0, now.getTime() - Date.parse(action.since)),
      },
      now,
    ),
  );
}

/** In the calls' order, so the events go out as the model asked for them. */
function settleOutputs(
  deps: AnswerDeps,
  ctx: AnswerContext,
  outputs: ToolOutputsBody['outputs'],
): Settled {
  const byId = new Map(outputs.map((output) => [output.toolCallId, output]));
  const settled: Settled = { messages: [], events: [], approved: [] };
  for (const call of ctx.action.toolCalls) {
    const output = byId.get(call.toolCallId);
    if (!output) continue; // checked: every call has one
    const content = capOutput(output.output, deps.config.tools.maxOutputChars);
    result(ctx, call, content, output.isError ?? false, settled);
  }
  return settled;
}

/** A denied call is settled now (the model hears why); an approved one runs when the run goes on. */
function settleDecisions(ctx: AnswerContext, decisions: ApprovalsBody['decisions']): Settled {
  const byId = new Map(decisions.map((decision) => [decision.toolCallId, decision]));
  const settled: Settled = { messages: [], events: [], approved: [] };
  for (const call of ctx.action.toolCalls) {
    const decision = byId.get(call.toolCallId);
    if (!decision) continue;
    if (decision.approve) settled.approved.push(call.toolCallId);
    else
      result(ctx, call, decision.reason ? `${DENIED}: ${decision.reason}` : DENIED, true, settled);
  }
  return settled;
}

/**
 * A paused run's job waits, delayed until the action's deadline: promoting it makes it run now.
 * `promote` throws when the job is not delayed — its worker may still be moving it there; it
 * reads the run again and promotes itself — so a failure here is only logged.
 */
async function wakeJob(deps: AnswerDeps, runId: string) {
  try {
    const job = await deps.queue.getJob(runId);
    await job?.promote();
  } catch (error) {
    deps.logger.debug(
      { err: error, runId },
      'the answered run’s job was not promoted; it wakes itself',
    );
  }
}

const checkToolOutputs = bodyChecker(toolOutputsBody);
const checkApprovals = bodyChecker(approvalsBody);

/** A stream command's payload, checked by the HTTP route's schema (none is a 400 like `{}`). */
export function parseToolOutputsBody(value: unknown): ToolOutputsBody {
  return checkToolOutputs(value ?? {});
}

export function parseApprovalsBody(value: unknown): ApprovalsBody {
  return checkApprovals(value ?? {});
}
