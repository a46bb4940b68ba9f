import type { RunFailureCode } from '../failures';

/**
 * The narrow interface the run job needs from a chat model. Only `openai.ts` knows the SDK;
 * everything else sees these types and `LlmError`.
 */

/** A call the model asked for. `arguments` is the JSON text the model produced, as OpenAI's API has it (not parsed, not validated). */
export interface ToolCall {
  /** The model's own id for the call; one is made (`call_…`) when the model gives none. */
  id: string;
  name: string;
  arguments: string;
}

/**
 * A message of the prompt. An assistant message may carry the tool calls it made (its text may
 * then be empty); each of their results follows as a `tool` message naming the call's id.
 */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

/** A tool the model may call: `parameters` is its arguments' JSON Schema. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** The model's answer: text, tool calls, or both (never neither: that is `llm_bad_response`). */
export interface ChatResult {
  content: string;
  /** In the model's order; empty when it called none. */
  toolCalls: ToolCall[];
  usage: ChatUsage;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /** The tools the model may call; absent or empty: none, and the request has no `tools`. */
  tools?: ToolDefinition[];
  /**
   * With `tools`: `auto` (the model's choice, the API's default) or `none` (answer with text:
   * the loop's last step, whose history still holds tool messages). Ignored without tools.
   */
  toolChoice?: 'auto' | 'none';
  /**
   * The most the answer may take, in tokens (the summary call: CHAT_SUMMARY_MAX_TOKENS); absent:
   * the server's own limit. A server may ignore it, so a caller that needs the cap cuts too.
   */
  maxTokens?: number;
  signal?: AbortSignal;
  /** Each piece of the reply's text as it streams; tool-call pieces are not handed over. */
  onDelta?: (text: string) => void;
}

export interface Llm {
  /**
   * One chat completion. With `onDelta` the model streams and each piece of the reply is handed
   * over as it arrives; the result still holds the whole text, the tool calls and the usage.
   */
  chat(request: ChatRequest): Promise<ChatResult>;
}

/**
 * How the run job must react to a failed call:
 * - `retryable`: spend an attempt, BullMQ retries with backoff;
 * - `rate_limited`: pause the queue for `retryAfterMs`, retry without spending an attempt;
 * - `final`: fail the run now.
 */
export type LlmErrorKind = 'retryable' | 'rate_limited' | 'final';

export class LlmError extends Error {
  constructor(
    readonly kind: LlmErrorKind,
    readonly code: RunFailureCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'LlmError';
  }
}
