import type { Store } from '../../db/store';
import type { MemoryReport, Run } from '../../db/types';
import type { Config } from '../config';
import { contextTokensFor } from '../config';
import type { ChatMessage, Llm, ToolDefinition } from '../llm/llm';
import type { Logger } from '../logger';
import { systemPromptTokens, windowBudget } from './budget';
import { buildPrompt, buildSummaryRequest, foldRange, type MemoryMessage } from './prompt';
import { capSummary, summaryReserveTokens, summaryTokens } from './summary';
import { messageTokens, toolDefinitionTokens } from './tokens';
import { alignWindow, type Counted, completeToolGroups, fitNewest, tokensOf } from './window';

export interface RunPromptOptions {
  /** The tool definitions the call offers (their JSON counts against the context window). */
  tools: ToolDefinition[];
  /** The tokens of the run's own committed step messages, which the loop appends after the prompt. */
  stepTokens: number;
  /** The window's budget is multiplied by this (default 1); the overflow retry passes 0.5. */
  shrink?: number;
}

/**
 * Builds a run's prompt for one model call from bounded memory (docs/architecture.md, "Memory").
 * The agent loop calls it before every step: the budget shrinks as the run's own steps grow.
 *
 * 1. budget = the model's context window − CHAT_MAX_OUTPUT_TOKENS − the system prompt − the
 *    summary − the tool definitions − `stepTokens` − a 5 % margin, times `shrink`;
 * 2. window = the newest whole slots up to and including the run's user message that fit it, at
 *    most CHAT_MEMORY_RECENT_MESSAGES messages, never starting inside a slot nor splitting a
 *    tool call from its results (`alignWindow`). The run's user message is always in it, even
 *    alone over the budget; the run's own steps are not (the loop sends those);
 * 3. what is older than the window and not yet summarised is folded into the summary (old
 *    summary + those messages), capped at CHAT_SUMMARY_MAX_TOKENS. While a fold is due the cap is
 *    set aside in step 1 in place of the old summary's tokens, so the new summary fits whatever
 *    it says. If the fold fails, the newest of those messages that fit what the window left go
 *    verbatim, the rest are left out, and the fold is tried again next time;
 * 4. with `shrink` < 1 and a window of the user message alone, the summary is left out of the
 *    prompt (it is still brought up to date and stored).
 *
 * The window never overlaps what the summary covers. Message tokens are `messages.tokens`, or
 * counted here when null (a message written before counting existed).
 */
export async function buildRunPrompt(
  deps: { db: Store; llm: Llm; config: Config; logger: Logger },
  run: Run,
  /** Aborts the summary call too when the run is cancelled. */
  signal: AbortSignal | undefined,
  opts: RunPromptOptions,
): Promise<{ messages: ChatMessage[]; report: MemoryReport }> {
  const { db, llm, config, logger } = deps;
  const shrink = opts.shrink ?? 1;
  const recentMax = config.chat.recentMessages;
  // The slots before the run's own, and its user message, in one read: the user message is the
  // one message of its even slot, so it is the newest read through that slot. The run's step
  // messages are the loop's to send, never window: whatever else is read at or after the run's
  // slot is left out.
  const thread = await db.getThreadMemory(run.threadId, run.seq, Math.max(recentMax - 1, 1) + 1);
  let own = thread?.recent.find((m) => m.id === run.userMessageId);
  if (thread) thread.recent = thread.recent.filter((m) => m.seq < run.seq);
  own ??= await db.getMessage(run.userMessageId);
  if (!thread || !own) throw new Error(`run ${run.id}: its thread or user message is gone`);
  let summary = thread.summary;
  let summaryThroughSeq = thread.summaryThroughSeq;
  let summaryTokensNow = summary ? thread.summaryTokens || summaryTokens(summary) : 0;
  const covered = summaryThroughSeq ?? -1;
  const before = thread.recent.slice(Math.max(0, thread.recent.length - (recentMax - 1)));
  const candidates = alignWindow([...before.filter((m) => m.seq > covered), own]).map(counted);

  const contextTokens = contextTokensFor(config, run.model);
  const systemTokens = systemPromptTokens(config);
  const toolsTokens = toolDefinitionTokens(opts.tools);
  const budgetWith = (summaryPart: number) =>
    windowBudget({
      contextTokens,
      maxOutputTokens: config.chat.maxOutputTokens,
      systemTokens,
      summaryTokens: summaryPart,
      toolsTokens,
      stepTokens: opts.stepTokens,
      shrink,
    });

  let budgetTokens = budgetWith(summaryTokensNow);
  let window = fitNewest(candidates, budgetTokens, { keepLast: true });
  let range = foldRange(firstSeq(window), summaryThroughSeq);
  if (range) {
    const reserve = Math.max(summaryTokensNow, summaryReserveTokens(config.chat.summaryMaxTokens));
    budgetTokens = budgetWith(reserve);
    window = fitNewest(candidates, budgetTokens, { keepLast: true });
    range = foldRange(firstSeq(window), summaryThroughSeq);
  }

  let uncovered: Counted<MemoryMessage>[] = [];
  const older = range
    ? await db.listMessagesBetween(run.threadId, range.afterSeq, range.beforeSeq)
    : [];
  // Slots are not all taken (user messages use every other one): a range can hold nothing.
  // Then the window is every candidate, and no cap need be set aside.
  if (range && older.length === 0) budgetTokens = budgetWith(summaryTokensNow);
  const last = older.at(-1);
  if (last) {
    try {
      const result = await llm.chat({
        model: config.chat.summaryModel ?? run.model,
        messages: buildSummaryRequest(summary, older),
        maxTokens: config.chat.summaryMaxTokens,
        signal,
      });
      const text = capSummary(result.content, config.chat.summaryMaxTokens);
      const tokens = summaryTokens(text);
      await db.saveSummary(run.threadId, {
        text,
        throughMessageId: last.id,
        throughSeq: last.seq,
        tokens,
      });
      summary = text;
      summaryTokensNow = tokens;
      summaryThroughSeq = last.seq;
    } catch (error) {
      if (signal?.aborted) throw error;
      const room = budgetWith(summaryTokensNow) - tokensOf(window);
      uncovered = fitNewest(completeToolGroups(older).map(counted), room);
      logger.warn(
        { runId: run.id, threadId: run.threadId, err: error, verbatim: uncovered.length },
        'summary failed; sending the older messages that fit verbatim',
      );
    }
  }

  const sendSummary = summary !== null && !(shrink < 1 && window.length === 1);
  const sent = [...uncovered, ...window];
  const messages = buildPrompt({
    systemPrompt: config.chat.systemPrompt,
    summary: sendSummary ? summary : null,
    uncovered: uncovered.map((m) => m.message),
    recent: window.map((m) => m.message),
  });
  return {
    messages,
    report: {
      contextTokens,
      budgetTokens,
      systemTokens,
      summaryTokens: sendSummary ? summaryTokensNow : 0,
      toolsTokens,
      windowTokens: tokensOf(sent),
      windowMessages: sent.length,
      summarisedMessages: sendSummary ? coveredUserMessages(summaryThroughSeq) : 0,
    },
  };
}

function counted<M extends MemoryMessage>(message: M): Counted<M> {
  return { message, tokens: message.tokens ?? messageTokens(message) };
}

/**
 * What `summarisedMessages` counts: the user messages the summary covers (each with whatever its
 * run said), not every message: the store keeps no count of the messages through a slot, and
 * counting them would read the history. User messages take every other slot from 0 (ingress
 * claims slots 2 apart: db/{sqlite,postgres}/queries/ingress.ts), so through slot S that is
 * floor(S / 2) + 1.
 */
export function coveredUserMessages(summaryThroughSeq: number | null): number {
  return summaryThroughSeq === null ? 0 : Math.floor(summaryThroughSeq / 2) + 1;
}

function firstSeq(window: Counted<MemoryMessage>[]): number {
  return window[0]?.message.seq ?? 0;
}
