/**
 * The agent loop of one attempt: model → tools → model …, every model answer that asks for tools
 * and every tool result committed (with its event) before the next action, so an attempt that
 * takes over after a retry or a crash goes on from the committed steps and never repeats a model
 * call or a tool call whose result is stored. Mirrors DESIGN's "Tools and the agent loop".
 */
import type { NewStepMessage, Store, StepCommit } from '../db/store';
import type {
  MemoryReport,
  Message,
  MessageToolCall,
  OutboxRow,
  Run,
  RunAction,
  RunActionKind,
  RunUsage,
} from '../db/types';
import type { Config } from '../src/config';
import { buildEvent, TOOL_RESULT_EVENT_CHARS } from '../src/events/event';
import { newMessageId, newToolCallId } from '../src/ids';
import {
  type ChatMessage,
  type ChatRequest,
  type Llm,
  LlmError,
  type ToolCall,
  type ToolDefinition,
} from '../src/llm/llm';
import type { Logger } from '../src/logger';
import { stepMessages } from '../src/memory/prompt';
import { messageTokens } from '../src/memory/tokens';
import type { ToolRegistry } from '../src/tools/service';
import type { LoopReport } from './run-report';

export interface LoopDeps {
  db: Store;
  llm: Llm;
  tools: ToolRegistry;
  config: Config;
  logger: Logger;
}

/** How the loop ended: the model's final answer, to store as the run's reply… */
export interface LoopReply {
  kind: 'reply';
  content: string;
  /** The budget report of the last model call. */
  memory: MemoryReport;
  /** The reply's place among the run's messages: after every committed step message. */
  position: number;
  usage: RunUsage;
  /** Model calls with a committed answer, this last one included. */
  steps: number;
  toolCallCount: number;
}

/** …or a pause: the client must answer these calls (its own tools' outputs, or approvals). */
export type LoopOutcome = LoopReply | { kind: 'pause'; action: RunAction };

/** The run stopped being `running` under the loop (a cancel came): end it cancelled. */
export class RunNotRunningError extends Error {
  override name = 'RunNotRunningError';
}

/** What the committed step messages say about where the run is. */
interface Progress {
  history: ChatMessage[];
  /** Assistant messages that asked for tools: the model calls already answered. */
  steps: number;
  toolCallCount: number;
  /** The last step's calls that have no committed result yet, with their result's position. */
  pending: { call: MessageToolCall; position: number; step: number }[];
  nextPosition: number;
  /** Every tool call id of the run so far: a new call's id must differ (its idempotency key). */
  usedIds: Set<string>;
  /** The tokens of the run's own step messages: the part of the prompt memory must leave room for. */
  stepTokens: number;
}

/** Reads the committed steps back: the conversation so far and what is left to do. */
export function replaySteps(rows: Message[]): Progress {
  // A call's result has its place fixed (right after its call): the place says it is answered.
  const answered = new Set(rows.filter((m) => m.role === 'tool').map((m) => m.position));
  const usedIds = new Set<string>();
  let steps = 0;
  let pending: Progress['pending'] = [];
  for (const row of rows) {
    if (row.role !== 'assistant' || !row.toolCalls) continue;
    steps++;
    for (const call of row.toolCalls) usedIds.add(call.toolCallId);
    pending = row.toolCalls.flatMap((call, i) =>
      answered.has(row.position + 1 + i)
        ? []
        : [{ call, position: row.position + 1 + i, step: steps }],
    );
  }
  const last = rows.at(-1);
  const lastCall = [...rows].reverse().find((m) => m.role === 'assistant' && m.toolCalls);
  const nextPosition = Math.max(
    last ? last.position + 1 : 0,
    lastCall ? lastCall.position + 1 + (lastCall.toolCalls?.length ?? 0) : 0,
  );
  return {
    // Only a step whose calls all have results goes to the model; a pending one waits for them.
    history: stepMessages(rows),
    steps,
    toolCallCount: answered.size,
    pending,
    nextPosition,
    usedIds,
    stepTokens: rows.reduce((sum, row) => sum + (row.tokens ?? messageTokens(row)), 0),
  };
}

/**
 * Runs the loop from the run's committed steps to the model's final answer. `announce` delivers
 * the outbox rows each commit wrote, in order, after the attempt's `started`. Throws the model's
 * `LlmError`s (the run's retry rules apply), `RunNotRunningError` when a cancel came first, and
 * whatever the store throws.
 */
export async function runAgentLoop(opts: {
  deps: LoopDeps;
  run: Run;
  /**
   * No attempt claimed the run before this one (its first, not resumed): no step can have been
   * committed for it, so there are none to read back.
   */
  firstAttempt?: boolean;
  /**
   * Memory's prompt for one model call: system prompt, summary and the thread's window up to the
   * user message, within what is left of the model's context after the tools and the run's own
   * steps; `shrink` (the overflow retry) halves the window's budget.
   */
  buildPrompt: (opts: {
    tools: ToolDefinition[];
    stepTokens: number;
    shrink?: number;
  }) => Promise<{ messages: ChatMessage[]; report: MemoryReport }>;
  signal: AbortSignal;
  onDelta: (text: string) => void;
  announce: (rows: OutboxRow[]) => void;
  /** Told of each model call and tool result: the job's log and progress (run-report.ts). */
  report: LoopReport;
  logger: Logger;
}): Promise<LoopOutcome> {
  const { deps, run, signal, logger, report } = opts;
  const { db, llm, tools, config } = deps;
  const ids = { runId: run.id, threadId: run.threadId };
  // The run's tools as they are now: an MCP server that is away leaves its tools out.
  const offered: ToolDefinition[] = run.tools.flatMap((name) => {
    const tool = tools.get(name);
    return tool ? [{ name, description: tool.description, parameters: tool.parameters }] : [];
  });
  const allowed = new Set(offered.map((tool) => tool.name));
  // The client's own tools: offered too; their calls wait for the client's outputs.
  const clientTools = new Set(run.clientTools.map((tool) => tool.name));
  for (const tool of run.clientTools) offered.push({ ...tool });
  /** Where a call goes: the client, or a server tool's kind (`unknown`: not the run's tool). */
  const sourceOf = (name: string) =>
    clientTools.has(name) ? 'client' : (allowed.has(name) && tools.get(name)?.source) || 'unknown';
  const approved = new Set(run.approved);
  const needsApproval = (call: MessageToolCall) =>
    allowed.has(call.name) &&
    tools.get(call.name)?.approval === true &&
    !approved.has(call.toolCallId);
  let usage: RunUsage = run.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  let memory: MemoryReport | undefined;
  let progress = replaySteps(opts.firstAttempt ? [] : await db.listRunSteps(run.id));

  // One commit at a time, in order: the run's counts are absolute, and its events keep order.
  let commits: Promise<unknown> = Promise.resolve();
  const commit = (input: Omit<StepCommit, 'runId' | 'now'>) => {
    const done = commits.then(() => db.commitStep({ ...input, runId: run.id, now: new Date() }));
    commits = done.catch(() => {});
    return done.then((result) => {
      if (result.kind === 'not_running') throw new RunNotRunningError('the run is not running');
      if (result.kind === 'committed') opts.announce(result.rows);
      return result.kind;
    });
  };

  for (;;) {
    if (progress.pending.length > 0) {
      const runnable = progress.pending.filter(
        ({ call }) => !clientTools.has(call.name) && !needsApproval(call),
      );
      if (runnable.length === 0) {
        // Only the client can settle the rest: approvals first, then its own tools' outputs.
        const approvals = progress.pending.filter(({ call }) => needsApproval(call));
        return pauseFor(
          approvals.length > 0 ? 'approval' : 'tool_outputs',
          approvals.length > 0 ? approvals : progress.pending,
        );
      }
      // Then read the steps back: what was committed is the truth, also when another attempt
      // (a zombie) committed some of them first.
      await runTools(runnable);
      progress = replaySteps(await db.listRunSteps(run.id));
      continue;
    }
    if (signal.aborted) throw new RunNotRunningError('cancelled');
    const step = progress.steps + 1;
    report.stepStarted(step);
    // The last step is offered the tools but may not call them, so the run ends with an answer.
    const last = step >= config.run.maxSteps;
    // Memory is fitted at every step: the run's own steps and tool results count against it.
    const fit = { tools: offered, stepTokens: progress.stepTokens };
    let built = await opts.buildPrompt(fit);
    const request = (messages: ChatMessage[]): ChatRequest => ({
      model: run.model,
      messages: [...messages, ...progress.history],
      signal,
      onDelta: opts.onDelta,
      ...(offered.length > 0 ? { tools: offered, toolChoice: last ? 'none' : 'auto' } : {}),
    });
    let calledAt = 0;
    const callModel = async (messages: ChatMessage[], retry: boolean) => {
      calledAt = performance.now();
      try {
        return await llm.chat(request(messages));
      } catch (error) {
        const overflow = error instanceof LlmError && error.code === 'context_overflow';
        report.modelFailed({
          step,
          durationMs: performance.now() - calledAt,
          error,
          cancelled: signal.aborted,
          retrying: overflow && !retry,
        });
        throw error;
      }
    };
    let answer: Awaited<ReturnType<Llm['chat']>>;
    let shrunk = false;
    try {
      answer = await callModel(built.messages, false);
    } catch (error) {
      // The model says the prompt is too long after all (its tokenizer is not ours): once,
      // with half the window; a second refusal fails the run context_overflow.
      if (!(error instanceof LlmError) || error.code !== 'context_overflow') throw error;
      logger.warn(
        { step, memory: built.report },
        'context too long for the model; halving the window',
      );
      built = await opts.buildPrompt({ ...fit, shrink: 0.5 });
      shrunk = true;
      answer = await callModel(built.messages, true);
    }
    report.modelAnswered({
      step,
      durationMs: performance.now() - calledAt,
      memory: built.report,
      usage: answer.usage,
      toolCalls: answer.toolCalls.map((toolCall) => toolCall.name),
      replyChars: answer.content.length,
      shrunk,
    });
    memory = built.report;
    usage = addUsage(usage, answer.usage);
    if (answer.toolCalls.length > 0 && offered.length > 0 && !last) {
      const calls = answer.toolCalls.map((call) => toStoredCall(call, progress.usedIds));
      const position = progress.nextPosition;
      const stored: NewStepMessage = {
        id: newMessageId(),
        position,
        role: 'assistant',
        content: answer.content,
        toolCalls: calls,
        tokens: messageTokens({ content: answer.content, toolCalls: calls }),
      };
      await commit({
        messages: [stored],
        events: calls.map((call) =>
          buildEvent('agent.run.tool_called', ids, {
            step,
            toolCallId: call.toolCallId,
            name: call.name,
            arguments: call.arguments,
            source: sourceOf(call.name),
          }),
        ),
        steps: step,
        usage,
        memory,
      });
      logger.info({ step, toolCalls: calls.length }, 'model asked for tools');
      progress = replaySteps(await db.listRunSteps(run.id));
      continue;
    }
    if (answer.content.length === 0) {
      throw new LlmError(
        'retryable',
        'llm_bad_response',
        offered.length === 0
          ? 'the model server answered with tool calls, but no tools were offered'
          : 'the model server answered with tool calls on the last step, where none may be made',
      );
    }
    return {
      kind: 'reply',
      content: answer.content,
      memory: built.report,
      position: progress.nextPosition,
      usage,
      steps: step,
      toolCallCount: progress.toolCallCount,
    };
  }

  /** What the run waits for: these calls of the last step, until the deadline. */
  function pauseFor(kind: RunActionKind, calls: Progress['pending']): LoopOutcome {
    const now = Date.now();
    return {
      kind: 'pause',
      action: {
        kind,
        step: calls[0]?.step ?? progress.steps,
        toolCalls: calls.map(({ call, position }) => ({ ...call, position })),
        since: new Date(now).toISOString(),
        deadline: new Date(now + config.run.actionTimeoutMs).toISOString(),
      },
    };
  }

  /** One call, or the error result the model gets instead: a tool the run may not call. */
  async function callTool(call: MessageToolCall) {
    if (!allowed.has(call.name)) {
      return {
        isError: true,
        output: `the tool "${call.name}" is not available to this run`,
        durationMs: 0,
      };
    }
    return tools.call(call.name, call.arguments, {
      ...ids,
      toolCallId: call.toolCallId,
      signal,
      logger,
    });
  }

  /** Runs a step's pending calls, at most TOOL_CONCURRENCY at once, committing each result. */
  async function runTools(pending: Progress['pending']): Promise<void> {
    let next = 0;
    let taken = false;
    let count = progress.toolCallCount;
    const lane = async () => {
      while (next < pending.length && !taken) {
        const { call, position, step } = pending[next++] as Progress['pending'][number];
        const outcome = await callTool(call);
        if (signal.aborted) throw new RunNotRunningError('cancelled');
        const toolCallCount = ++count;
        report.toolFinished({
          step,
          name: call.name,
          source: sourceOf(call.name),
          isError: outcome.isError,
          output: outcome.output,
          durationMs: outcome.durationMs,
          toolCalls: toolCallCount,
        });
        const kind = await commit({
          messages: [
            {
              id: newMessageId(),
              position,
              role: 'tool',
              content: outcome.output,
              toolCallId: call.toolCallId,
              name: call.name,
              isError: outcome.isError,
              tokens: messageTokens({ content: outcome.output, name: call.name }),
            },
          ],
          events: [
            buildEvent('agent.run.tool_result', ids, {
              step,
              toolCallId: call.toolCallId,
              name: call.name,
              isError: outcome.isError,
              output: outcome.output.slice(0, TOOL_RESULT_EVENT_CHARS),
              durationMs: outcome.durationMs,
            }),
          ],
          toolCallCount,
        });
        // Another attempt committed this result first: stop; the steps are read again.
        if (kind === 'taken') taken = true;
      }
    };
    const width = Math.max(1, Math.min(config.tools.concurrency, pending.length));
    await Promise.all(Array.from({ length: width }, lane));
  }
}

/**
 * A call as stored. Some models number their calls afresh in every answer (`call_0` each time):
 * an id an earlier step of the run used is replaced, so that each call of a run has its own id
 * and idempotency key (the model is shown the stored ids, so it matches its results still).
 */
function toStoredCall(call: ToolCall, used: Set<string>): MessageToolCall {
  const toolCallId = used.has(call.id) ? newToolCallId() : call.id;
  used.add(toolCallId);
  return { toolCallId, name: call.name, arguments: call.arguments };
}

function addUsage(a: RunUsage, b: RunUsage): RunUsage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}
