import OpenAI from 'openai';
import type { Config } from '../config';
import type { RunFailureCode } from '../failures';
import { type ChatResult, type Llm, LlmError, type ToolCall } from './llm';
import { type RequestBody, toRequestBody } from './request-body';
import { readToolCalls, ToolCallAssembler } from './tool-calls';

const DEFAULT_RETRY_AFTER_MS = 1000;
const MAX_MESSAGE_CHARS = 500;

/**
 * The one file that imports the SDK. Its own retries are off (`maxRetries: 0`): BullMQ is the
 * only retry layer, so every retry is counted and visible in Bull Board.
 */
export function createLlm(config: Config): Llm {
  const { apiKey, baseUrl } = config.openai;
  if (apiKey === undefined) {
    return {
      chat: async () => {
        throw new LlmError(
          'final',
          'llm_not_configured',
          'no model server configured: set OPENAI_API_KEY or OPENAI_BASE_URL',
        );
      },
    };
  }
  const client = new OpenAI({
    apiKey,
    baseURL: baseUrl,
    maxRetries: 0,
    timeout: config.run.llmTimeoutMs,
  });
  return {
    async chat(request): Promise<ChatResult> {
      const { signal, onDelta } = request;
      const body = toRequestBody(request);
      if (onDelta) {
        const idleMs = config.run.llmTimeoutMs;
        return streamCompletion(client, { body, signal, onDelta, idleMs });
      }
      let completion: unknown;
      try {
        completion = await client.chat.completions.create(body, { signal });
      } catch (error) {
        throw classifyLlmError(error);
      }
      return readCompletion(completion);
    },
  };
}

/**
 * Streams a completion; an error in the middle of the stream is classified like any other. The
 * SDK's timeout ends once the headers arrive, so a server that stops sending mid-answer would
 * hold the run forever: `idleMs` (LLM_TIMEOUT_MS) without a chunk aborts the call, and the
 * partial answer is dropped as a timeout (retried; the next attempt's deltas start over).
 * Text pieces go to `onDelta`; tool-call pieces are assembled by their index and returned whole.
 */
async function streamCompletion(
  client: OpenAI,
  request: {
    body: RequestBody;
    signal?: AbortSignal;
    onDelta: (text: string) => void;
    idleMs: number;
  },
): Promise<ChatResult> {
  let content = '';
  const toolCalls = new ToolCallAssembler();
  let usage: OpenAI.CompletionUsage | undefined;
  const idle = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stillStreaming = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), request.idleMs);
  };
  const signal = request.signal ? AbortSignal.any([request.signal, idle.signal]) : idle.signal;
  try {
    const stream = await client.chat.completions.create(
      {
        ...request.body,
        stream: true,
        stream_options: { include_usage: true },
      },
      { signal },
    );
    stillStreaming();
    for await (const chunk of stream) {
      stillStreaming();
      const delta = chunk.choices?.[0]?.delta;
      const text = delta?.content;
      if (text) {
        content += text;
        request.onDelta(text);
      }
      for (const piece of delta?.tool_calls ?? []) toolCalls.add(piece);
      if (chunk.usage) usage = chunk.usage;
    }
  } catch (error) {
    if (!idle.signal.aborted) throw classifyLlmError(error);
  } finally {
    clearTimeout(timer);
  }
  // An abort can also end the SDK's stream quietly: the flag, not an error, says it was cut.
  if (idle.signal.aborted) {
    throw new LlmError(
      'retryable',
      'llm_timeout',
      `the model server sent nothing for ${request.idleMs} ms in the middle of its answer`,
    );
  }
  return toResult(content, toolCalls.finish(), usage);
}

/** A completion as the SDK hands it over (a server may send anything with a 200). */
function readCompletion(completion: unknown): ChatResult {
  const body = completion as OpenAI.Chat.ChatCompletion | null;
  const message = typeof body === 'object' ? body?.choices?.[0]?.message : undefined;
  const content = message?.content;
  return toResult(
    typeof content === 'string' ? content : '',
    readToolCalls(message?.tool_calls),
    body?.usage,
  );
}

/** A 200 that is not a chat completion with text or tool calls is a bad response, retried like a 5xx. */
function toResult(
  content: string,
  toolCalls: ToolCall[],
  usage: OpenAI.CompletionUsage | undefined,
): ChatResult {
  if (content.length === 0 && toolCalls.length === 0) {
    throw new LlmError(
      'retryable',
      'llm_bad_response',
      'the model server answered 200 without a chat completion holding text or tool calls',
    );
  }
  const promptTokens = usage?.prompt_tokens ?? 0;
  const completionTokens = usage?.completion_tokens ?? 0;
  return {
    content,
    toolCalls,
    usage: {
      promptTokens,
      completionTokens,
      totalTokens: usage?.total_tokens ?? promptTokens + completionTokens,
    },
  };
}

const FINAL_STATUS: Record<number, RunFailureCode> = {
  400: 'llm_bad_request',
  401: 'llm_unauthorized',
  403: 'llm_forbidden',
  404: 'llm_not_found',
  422: 'llm_unprocessable',
};

/** The one place errors are classified: retryable, rate limited or final (docs/events.md). */
export function classifyLlmError(error: unknown): LlmError {
  if (error instanceof LlmError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new LlmError('retryable', 'llm_timeout', 'the model server did not answer in time');
  }
  if (error instanceof OpenAI.APIUserAbortError) {
    return new LlmError('retryable', 'llm_aborted', 'the call was aborted');
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new LlmError(
      'retryable',
      'llm_unreachable',
      `cannot reach the model server: ${short(error)}`,
    );
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const status = error.status;
    const message = `the model server answered ${status}: ${short(error)}`;
    if (status !== 429 && isContextOverflow(error)) {
      return new LlmError('final', 'context_overflow', message);
    }
    if (status === 429) {
      return new LlmError('rate_limited', 'llm_rate_limited', message, retryAfterMs(error.headers));
    }
    if (status === 408) return new LlmError('retryable', 'llm_timeout', message);
    if (status === 409) return new LlmError('retryable', 'llm_conflict', message);
    if (status >= 500) return new LlmError('retryable', 'llm_server_error', message);
    return new LlmError('final', FINAL_STATUS[status] ?? 'llm_request_rejected', message);
  }
  // Anything else came from reading the answer (a body that is not JSON, say).
  return new LlmError('retryable', 'llm_bad_response', `unreadable answer: ${short(error)}`);
}

/**
 * A refusal of the prompt as longer than the model's context window, in each server's words
 * (looked up in their issue trackers):
 * - OpenAI: 400, `code: "context_length_exceeded"`, "This model's maximum context length is
 *   128000 tokens. However, your messages resulted in … tokens";
 * - vLLM: 400, "This model's maximum context length is 8192 tokens. However, you requested 8203
 *   tokens (7691 in the messages, 512 in the completion)" (vllm-project/vllm#20409);
 * - llama.cpp server: `type: "exceed_context_size_error"`, "the request exceeds the available
 *   context size, try increasing it" (ggml-org/llama.cpp#15780 introduced the type, answered
 *   with 500 then, 400 in later builds: #17284);
 * - Ollama: "the input length exceeds the context length" (with `truncate: false`), "the prompt
 *   is longer than the context length currently available to the model" (`shift: false`), and
 *   from its llama-server engine "request (8889 tokens) exceeds the available context size
 *   (4096 tokens)"; by default it truncates quietly instead (ollama/ollama#4967, #2208);
 * - LM Studio: "The number of tokens to keep from the initial prompt is greater than the context
 *   length", "Trying to keep the first … tokens when context the overflows", "Cannot truncate
 *   prompt with n_keep (…) >= n_ctx (…)" (lmstudio-ai/lmstudio-bug-tracker#237, #546).
 * Read whatever the status (a 500 too: halving the window is the one thing that helps). A
 * body without an `error` field (early vLLM's `{"object":"error",…}`) reaches us as "status
 * code (no body)" from the SDK and cannot be recognised.
 */
const OVERFLOW_WORDINGS = [
  'maximum context length',
  'exceeds the available context size',
  'exceeds the context length',
  'longer than the context length',
  'greater than the context length',
  'context the overflows',
  'cannot truncate prompt with n_keep',
];

export function isContextOverflow(error: InstanceType<typeof OpenAI.APIError>): boolean {
  if (error.code === 'context_length_exceeded' || error.type === 'exceed_context_size_error') {
    return true;
  }
  const text = error.message.toLowerCase();
  return OVERFLOW_WORDINGS.some((wording) => text.includes(wording));
}

/** `retry-after-ms`, else `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number {
  const ms = Number(headers?.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = headers?.get('retry-after');
  if (raw) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.max(seconds * 1000, 1);
    const date = Date.parse(raw);
    if (!Number.isNaN(date)) return Math.max(date - now, 1);
  }
  return DEFAULT_RETRY_AFTER_MS;
}

function short(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}
