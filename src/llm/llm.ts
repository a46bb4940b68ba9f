import type { RunFailureCode } from '../failures';

/**
 * The narrow interface the run job needs from a chat model. Only `openai.ts` knows the SDK;
 * everything else sees these types and `LlmError`.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface ChatResult {
  content: string;
  usage: ChatUsage;
}

export interface Llm {
  /**
   * One chat completion. With `onDelta` the model streams and each piece of the reply is handed
   * over as it arrives; the result still holds the whole text and the usage.
   */
  chat(request: {
    model: string;
    messages: ChatMessage[];
    signal?: AbortSignal;
    onDelta?: (text: string) => void;
  }): Promise<ChatResult>;
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
