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
