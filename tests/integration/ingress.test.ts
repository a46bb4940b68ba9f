import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { waitForValue } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { outboxOfRun, rowCounts } from '../support/rows';

// No worker here: these tests look at what ingress stores and announces, not at runs.
describe.skipIf(!redisTestsEnabled())('POST /api/chat/messages', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      worker: false,
      env: { CHAT_ALLOWED_MODELS: 'gpt-4o-mini,small', CHAT_MAX_MESSAGE_CHARS: '20' },
    });
  });
  afterAll(() => t.close());

  test('a new thread: 202, ids, rows, the requested event and the job', async () => {
    const { status, body } = await t.post({ content: '  Hello there  ' });
    expect(status).toBe(202);
    expect(body).toEqual({
      threadId: expect.stringMatching(/^thr_[a-z0-9]{24}$/),
      messageId: expect.stringMatching(/^msg_[a-z0-9]{24}$/),
      runId: expect.stringMatching(/^run_[a-z0-9]{24}$/),
      model: 'gpt-4o-mini',
      status: 'queued',
    });

    await t.events.waitFor((all) => all.some((e) => e.runId === body.runId));
    const [event] = t.events.forRun(body.runId);
    const { eventId, occurredAt } = event ?? {};
    expect(event).toMatchObject({
      type: 'agent.run.requested',
      eventId: expect.stringMatching(/^evt_[a-z0-9]{24}$/),
      runId: body.runId,
      threadId: body.threadId,
      payload: { messageId: body.messageId, model: 'gpt-4o-mini', content: 'Hello there' },
    });
    expect(new Date(occurredAt ?? '').toISOString()).toBe(occurredAt as string);

    const run = await t.deps.db.getRun(body.runId);
    expect(run).toMatchObject({ status: 'queued', threadId: body.threadId, attempts: 0 });
    const rows = await waitForValue(
      () => outboxOfRun(t.sql, body.runId),
      (r) => r[0]?.delivered === true,
    );
    expect(rows).toEqual([{ eventId: eventId as string, delivered: true }]);

    const job = await t.deps.queue.getJob(body.runId);
    expect(job?.data).toEqual({ runId: body.runId });
    expect(job?.name).toContain(body.threadId);

    const messages = await t.get(`/api/chat/threads/${body.threadId}/messages`);
    expect(messages.body.messages).toEqual([
      expect.objectContaining({ id: body.messageId, role: 'user', content: 'Hello there' }),
    ]);
  });

  test('a supplied thread id starts that thread, then continues it', async () => {
    const threadId = `client-${Date.now()}_A`;
    const first = await t.post({ content: 'one', threadId });
    const second = await t.post({ content: 'two', threadId, model: 'small' });
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(first.body.threadId).toBe(threadId);
    expect(second.body).toMatchObject({ threadId, model: 'small' });
    const thread = await t.get(`/api/chat/threads/${threadId}`);
    expect(thread.body).toMatchObject({ id: threadId, messageCount: 2, summary: null });
    // The second run waits for the first: only the first has a job yet.
    expect(await t.deps.queue.getJob(first.body.runId)).toBeDefined();
    expect(await t.deps.queue.getJob(second.body.runId)).toBeUndefined();
  });

  test('null thread id and model mean absent', async () => {
    const { status, body } = await t.post({ content: 'hi', threadId: null, model: null });
    expect(status).toBe(202);
    expect(body.threadId).toMatch(/^thr_/);
    expect(body.model).toBe('gpt-4o-mini');
  });

  test('the models endpoint shows the default and the allow list', async () => {
    const { status, body } = await t.get('/api/chat/models');
    expect(status).toBe(200);
    expect(body).toEqual({ default: 'gpt-4o-mini', allowed: ['gpt-4o-mini', 'small'] });
  });
});

describe.skipIf(!redisTestsEnabled())('bad input: a clear 4xx, nothing stored, no event', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      worker: false,
      env: {
        CHAT_ALLOWED_MODELS: 'gpt-4o-mini',
        CHAT_MAX_MESSAGE_CHARS: '10',
        HTTP_MAX_BODY_BYTES: '2000',
      },
    });
  });
  afterAll(() => t.close());

  // Checked after each rejected request, so a case that stored or announced something fails
  // on its own, also when it is the only test run.
  const expectNothingStored = async () => {
    expect(await rowCounts(t.sql)).toEqual({
      threads: 0,
      messages: 0,
      runs: 0,
      outbox: 0,
      deliveries: 0,
    });
    expect(await t.deps.redis.xlen(t.config.redis.streamKey)).toBe(0);
    expect(await t.deps.queue.count()).toBe(0);
  };

  const json = { 'content-type': 'application/json' };
  const cases: [string, RequestInit, number, string][] = [
    ['missing content', { body: '{}', headers: json }, 400, 'invalid_request'],
    ['content not a string', { body: '{"content":42}', headers: json }, 400, 'invalid_request'],
    ['content null', { body: '{"content":null}', headers: json }, 400, 'invalid_request'],
    ['blank content', { body: '{"content":"   \\n\\t "}', headers: json }, 400, 'invalid_request'],
    [
      'content too long',
      { body: '{"content":"12345678901"}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'content with a NUL character',
      { body: '{"content":"a\\u0000b"}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'content with an unpaired surrogate',
      { body: '{"content":"a\\ud800b"}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'model with a NUL character',
      { body: '{"content":"hi","model":"gpt\\u0000"}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'unknown field',
      { body: '{"content":"hi","extra":1}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'threadId mistyped',
      { body: '{"content":"hi","threadId":7}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'threadId bad chars',
      { body: '{"content":"hi","threadId":"a b"}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'threadId too long',
      { body: JSON.stringify({ content: 'hi', threadId: 'a'.repeat(65) }), headers: json },
      400,
      'invalid_request',
    ],
    [
      'threadId empty',
      { body: '{"content":"hi","threadId":""}', headers: json },
      400,
      'invalid_request',
    ],
    [
      'model mistyped',
      { body: '{"content":"hi","model":["x"]}', headers: json },
      400,
      'invalid_request',
    ],
    ['model empty', { body: '{"content":"hi","model":""}', headers: json }, 400, 'invalid_request'],
    [
      'model not allowed',
      { body: '{"content":"hi","model":"gpt-5"}', headers: json },
      400,
      'model_not_allowed',
    ],
    ['malformed JSON', { body: '{"content": "hi"', headers: json }, 400, 'invalid_request'],
    ['a JSON array', { body: '["hi"]', headers: json }, 400, 'invalid_request'],
    ['a JSON string', { body: '"hi"', headers: json }, 400, 'invalid_request'],
    ['empty body', { body: '', headers: json }, 400, 'invalid_request'],
    [
      'text/plain',
      { body: '{"content":"hi"}', headers: { 'content-type': 'text/plain' } },
      415,
      'unsupported_media_type',
    ],
    ['no content type', { body: '{"content":"hi"}' }, 415, 'unsupported_media_type'],
    [
      'form encoded',
      { body: 'content=hi', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      415,
      'unsupported_media_type',
    ],
    [
      'body over HTTP_MAX_BODY_BYTES',
      { body: JSON.stringify({ content: 'x'.repeat(3000) }), headers: json },
      413,
      'payload_too_large',
    ],
  ];

  test.each(cases)('%s', async (_name, init, status, code) => {
    const response = await t.request('/api/chat/messages', { method: 'POST', ...init });
    expect(response.status).toBe(status);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
    await expectNothingStored();
  });

  test('the model error lists the allowed models', async () => {
    const { body } = await t.post({ content: 'hi', model: 'gpt-5' });
    expect(body.error.details).toEqual({ allowed: ['gpt-4o-mini'] });
    await expectNothingStored();
  });
});
