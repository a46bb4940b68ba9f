import { type Config, contextTokensFor } from '../config';
import { messageTokens } from './tokens';

/**
 * The token arithmetic of a prompt (docs/architecture.md, "Memory"). Everything is counted with
 * o200k, which is only an estimate for other models' tokenizers: 5 % of the context window is
 * kept back as a margin for that.
 */

/** 5 % of the context window, rounded up: what the estimate may be off by. */
export function marginTokens(contextTokens: number): number {
  return Math.ceil(contextTokens * 0.05);
}

/** The system prompt as sent (its own message, framing included); 0 without one. */
export function systemPromptTokens(config: Pick<Config, 'chat'>): number {
  const { systemPrompt } = config.chat;
  return systemPrompt ? messageTokens({ content: systemPrompt }) : 0;
}

/**
 * What a model's prompt may hold besides the system prompt: its context window less the answer
 * (CHAT_MAX_OUTPUT_TOKENS), the system prompt and the margin. A user message larger than this
 * can never be sent, whatever else is left out: ingress refuses it (`message_too_long`).
 */
export function promptBudget(config: Pick<Config, 'chat'>, model: string): number {
  const contextTokens = contextTokensFor(config, model);
  return (
    contextTokens -
    config.chat.maxOutputTokens -
    systemPromptTokens(config) -
    marginTokens(contextTokens)
  );
}

/** The parts of one model call that are not the window, as `windowBudget` takes them. */
export interface FixedParts {
  contextTokens: number;
  maxOutputTokens: number;
  systemTokens: number;
  summaryTokens: number;
  toolsTokens: number;
  /** The run's own committed step messages, which the loop appends after the prompt. */
  stepTokens: number;
  /** 1 normally; the overflow retry passes 0.5. */
  shrink: number;
}

/**
 * What is left for the window: the context window less every fixed part and the margin, times
 * `shrink`, rounded down. Negative when the fixed parts alone are over: the window then holds
 * only the run's user message.
 */
export function windowBudget(parts: FixedParts): number {
  const left =
    parts.contextTokens -
    parts.maxOutputTokens -
    parts.systemTokens -
    parts.summaryTokens -
    parts.toolsTokens -
    parts.stepTokens -
    marginTokens(parts.contextTokens);
  return Math.floor(left * parts.shrink);
}
