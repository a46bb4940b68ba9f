import { describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { RunFailureCode } from '../../src/failures';
import { LlmError } from '../../src/llm/llm';
import { classifyLlmError, retryAfterMs } from '../../src/llm/openai';

const apiError = (status: number, headers: Record<string, string> = {}) =>
  OpenAI.APIError.generate(
    status,
    { message: `status ${status}` },
    undefined,
    new Headers(headers),
  );

describe('classifyLlmError', () => {
  test.each([408, 409, 500, 502, 503, 504])('%i is retryable', (status) => {
    expect(classifyLlmError(apiError(status)).kind).toBe('retryable');
  });

  test.each<[number, RunFailureCode]>([
    [400, 'llm_bad_request'],
    [401, 'llm_unauthorized'],
    [403, 'llm_forbidden'],
    [404, 'llm_not_found'],
    [422, 'llm_unprocessable'],
  ])('%i is final (%s)', (status, code) => {
    const error = classifyLlmError(apiError(status));
    expect(error.kind).toBe('final');
    expect(error.code).toBe(code);
  });

  test('429 is rate limited and carries retry-after', () => {
    const error = classifyLlmError(apiError(429, { 'retry-after': '7' }));
    expect(error.kind).toBe('rate_limited');
    expect(error.retryAfterMs).toBe(7000);
  });

  test('network errors and timeouts are retryable', () => {
    expect(classifyLlmError(new OpenAI.APIConnectionError({ message: 'refused' })).kind).toBe(
      'retryable',
    );
    const timeout = classifyLlmError(new OpenAI.APIConnectionTimeoutError());
    expect(timeout).toMatchObject({ kind: 'retryable', code: 'llm_timeout' });
  });

  test('an unreadable answer is a retryable bad response', () => {
    expect(classifyLlmError(new SyntaxError('Unexpected token'))).toMatchObject({
      kind: 'retryable',
      code: 'llm_bad_response',
    });
  });

  test('our own errors pass through', () => {
    const own = new LlmError('final', 'llm_not_configured', 'x');
    expect(classifyLlmError(own)).toBe(own);
  });
});

describe('retryAfterMs', () => {
  test('prefers retry-after-ms, then seconds, then an HTTP date, else 1 s', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(
      3000,
    );
    expect(retryAfterMs(new Headers())).toBe(1000);
  });
});

/** An error as the SDK builds it from a server's status and JSON body. */
const refusal = (status: number, body: unknown) =>
  OpenAI.APIError.generate(status, body as object, undefined, new Headers());

describe('a context-length refusal is context_overflow, final', () => {
  test.each<[string, number, unknown]>([
    [
      'OpenAI (code context_length_exceeded)',
      400,
      {
        error: {
          message:
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130321 tokens. Please reduce the length of the messages.",
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      },
    ],
    [
      'vLLM',
      400,
      {
        error: {
          message:
            "This model's maximum context length is 8192 tokens. However, you requested 8203 tokens (7691 in the messages, 512 in the completion). Please reduce the length of the messages or completion.",
          type: 'BadRequestError',
          param: null,
          code: 400,
        },
      },
    ],
    [
      'llama.cpp (400)',
      400,
      {
        error: {
          code: 400,
          message: 'the request exceeds the available context size, try increasing it',
          type: 'exceed_context_size_error',
          n_prompt_tokens: 14429,
          n_ctx: 8192,
        },
      },
    ],
    [
      'llama.cpp (older builds: 500)',
      500,
      {
        error: {
          code: 500,
          message:
            'the request exceeds the available context size. try increasing the context size or enable context shift',
          type: 'exceed_context_size_error',
          n_prompt_tokens: 1407,
          n_ctx: 256,
        },
      },
    ],
    [
      'Ollama (truncate: false)',
      400,
      {
        error: {
          message: 'the input length exceeds the context length',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      },
    ],
    ['Ollama (a bare string)', 500, { error: 'the input length exceeds the context length' }],
    [
      'Ollama (shift: false)',
      400,
      {
        error: {
          message:
            'the prompt is longer than the context length currently available to the model; try increasing the context size',
          type: 'invalid_request_error',
        },
      },
    ],
    [
      "Ollama's llama-server engine",
      400,
      {
        error: {
          message:
            'request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it',
          type: 'invalid_request_error',
        },
      },
    ],
    [
      'LM Studio (n_keep)',
      400,
      {
        error:
          'The number of tokens to keep from the initial prompt is greater than the context length (n_keep: 13055>= n_ctx: 4096). Try to load the model with a larger context length, or provide a shorter input.',
      },
    ],
    [
      'LM Studio (context overflow policy)',
      400,
      {
        error:
          'Trying to keep the first 15857 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough.',
      },
    ],
    [
      'LM Studio (cannot truncate)',
      400,
      { error: 'Cannot truncate prompt with n_keep (15028) >= n_ctx (7424)' },
    ],
  ])('%s', (_server, status, body) => {
    const error = classifyLlmError(refusal(status, body));
    expect(error.kind).toBe('final');
    expect(error.code).toBe('context_overflow');
    expect(error.message).toContain(`answered ${status}`);
  });

  test('other 400s and 500s keep their codes; a 429 mentioning context stays rate limited', () => {
    const other = refusal(400, { error: { message: 'Invalid value for temperature' } });
    expect(classifyLlmError(other).code).toBe('llm_bad_request');
    const down = refusal(500, { error: { message: 'CUDA out of memory' } });
    expect(classifyLlmError(down)).toMatchObject({ kind: 'retryable', code: 'llm_server_error' });
    const limited = refusal(429, {
      error: { message: 'maximum context length tokens per minute' },
    });
    expect(classifyLlmError(limited).kind).toBe('rate_limited');
  });
});
