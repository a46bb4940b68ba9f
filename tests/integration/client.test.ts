import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type ApiClient, createApiClient, type Run, type Thread } from '../../src/client';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

// The client generated from /swagger/json (src/client/schema.ts), over real HTTP: the compiler
// checks these calls against the document, the server answers them.
describe.skipIf(!redisTestsEnabled())('the typed client', () => {
  let t: TestApp;
  let api: ApiClient;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, listen: true, env: { API_KEYS: 'key-1' } });
    api = createApiClient({ baseUrl: t.baseUrl ?? '', apiKey: 'key-1' });
  });
  afterAll(() => t.close());

  test('posts a message, reads its run and its thread, typed by the named schemas', async () => {
    const posted = await api.POST('/api/chat/messages', {
      body: { content: 'Hello from the typed client', threadId: 'client-test' },
      headers: { 'Idempotency-Key': 'client-test-1' },
    });
    expect(posted.response.status).toBe(202);
    if (!posted.data) throw new Error(`not accepted: ${JSON.stringify(posted.error)}`);
    const { runId, threadId } = posted.data;
    expect(threadId).toBe('client-test');

    const run = await api.GET('/api/chat/runs/{runId}', { params: { path: { runId } } });
    const view: Run | undefined = run.data;
    expect(view).toMatchObject({ id: runId, status: 'queued', attempts: 0 });

    const thread = await api.GET('/api/chat/threads/{threadId}', {
      params: { path: { threadId } },
    });
    const threadView: Thread | undefined = thread.data;
    expect(threadView?.status).toBe('busy');

    const page = await api.GET('/api/chat/threads/{threadId}/messages', {
      params: { path: { threadId }, query: { limit: 10 } },
    });
    expect(page.data?.messages.map((message) => message.content)).toEqual([
      'Hello from the typed client',
    ]);
  });

  test('errors come back typed, with the codes the document gives the route', async () => {
    const missing = await api.GET('/api/chat/runs/{runId}', {
      params: { path: { runId: 'run_nope' } },
    });
    expect(missing.response.status).toBe(404);
    // The union of this route's error codes (400, 401, 404, 503), not any string.
    const code: 'invalid_request' | 'unauthorized' | 'not_found' | 'store_unavailable' | undefined =
      missing.error?.error.code;
    expect(code).toBe('not_found');

    const blank = await api.POST('/api/chat/messages', { body: { content: '   ' } });
    expect(blank.response.status).toBe(400);
    expect(blank.error?.error.code).toBe('invalid_request');

    const anonymous = createApiClient({ baseUrl: t.baseUrl ?? '' });
    const denied = await anonymous.GET('/api/chat/models');
    expect(denied.response.status).toBe(401);
    expect(denied.error?.error.code).toBe('unauthorized');
  });
});
