import { describe, expect, test } from 'bun:test';
import { AppError } from '../../src/errors';
import { nestingDepth, readJsonBody } from '../../src/http/json-body';

const request = (body: string, type = 'application/json') =>
  new Request('http://localhost/', { method: 'POST', headers: { 'content-type': type }, body });

describe('readJsonBody', () => {
  test('parses JSON', async () => {
    expect(await readJsonBody(request('{"content":"hi"}'), 100)).toEqual({ content: 'hi' });
  });
  test('a cut-off UTF-8 sequence in one body does not leak into the next', async () => {
    // The decoder is shared across requests: it must keep no state between them.
    const cut = new Uint8Array([0x22, 0xe2, 0x82, 0x22]); // "<first two bytes of €>"
    const first = new Request('http://localhost/', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: cut,
    });
    expect(await readJsonBody(first, 100)).toBe('\uFFFD');
    expect(await readJsonBody(request('{"content":"hi"}'), 100)).toEqual({ content: 'hi' });
  });
  test.each([
    ['another content type', request('{}', 'text/plain'), 'unsupported_media_type'],
    ['too many bytes', request(JSON.stringify({ content: 'x'.repeat(200) })), 'payload_too_large'],
    ['malformed JSON', request('{"content":'), 'invalid_request'],
    ['deep nesting', request(`{"a":${'['.repeat(40)}${']'.repeat(40)}}`), 'invalid_request'],
  ])('rejects %s', async (_name, req, code) => {
    const error = (await readJsonBody(req, 100).catch((e: unknown) => e)) as AppError;
    expect(error).toBeInstanceOf(AppError);
    expect(error.code as string).toBe(code);
  });
});

describe('nestingDepth', () => {
  test('counts arrays and objects, not brackets inside strings', () => {
    expect(nestingDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(nestingDepth('{"a":"[[[[{{{{\\"]]]"}')).toBe(1);
    expect(nestingDepth('"plain"')).toBe(0);
  });
});
