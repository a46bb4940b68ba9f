import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

describe.skipIf(!redisTestsEnabled())('read endpoints', () => {
  let t: TestApp;
  let threadId: string;
  let ids: string[];
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
    threadId = `reads-${Date.now()}`;
    ids = [];
    for (let i = 1; i <= 7; i++) {
      const { body } = await t.post({ content: `message ${i}`, threadId });
      ids.push(body.messageId);
    }
  });
  afterAll(() => t.close());

  test('GET /health answers', async () => {
    expect(await t.get('/health')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  test('GET /ready: database and Redis answer', async () => {
    expect(await t.get('/ready')).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
    });
  });

  test('GET a thread', async () => {
    const { status, body } = await t.get(`/api/chat/threads/${threadId}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: threadId,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      messageCount: 7,
      summary: null,
      summaryThroughMessageId: null,
    });
  });

  test('messages page backwards, oldest first within a page', async () => {
    const first = await t.get(`/api/chat/threads/${threadId}/messages?limit=3`);
    expect(first.status).toBe(200);
    expect(first.body.messages.map((m: { id: string }) => m.id)).toEqual(ids.slice(4));
    expect(first.body).toMatchObject({ hasMore: true, nextBefore: ids[4] });

    const second = await t.get(
      `/api/chat/threads/${threadId}/messages?limit=3&before=${first.body.nextBefore}`,
    );
    expect(second.body.messages.map((m: { id: string }) => m.id)).toEqual(ids.slice(1, 4));
    const third = await t.get(
      `/api/chat/threads/${threadId}/messages?limit=3&before=${second.body.nextBefore}`,
    );
    expect(third.body.messages.map((m: { id: string }) => m.id)).toEqual(ids.slice(0, 1));
    expect(third.body).toMatchObject({ hasMore: false, nextBefore: null });

    const all = await t.get(`/api/chat/threads/${threadId}/messages`);
    expect(all.body.messages).toHaveLength(7);
  });

  test('GET a run', async () => {
    const posted = await t.post({ content: 'status please' });
    const { status, body } = await t.get(`/api/chat/runs/${posted.body.runId}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: posted.body.runId,
      threadId: posted.body.threadId,
      userMessageId: posted.body.messageId,
      model: 'gpt-4o-mini',
      status: 'queued',
      attempts: 0,
      error: null,
      reply: null,
      usage: null,
      cancel: null,
      createdAt: expect.any(String),
      startedAt: null,
      finishedAt: null,
    });
  });

  test.each([
    ['/api/chat/threads/nope', 404, 'not_found'],
    ['/api/chat/threads/nope/messages', 404, 'not_found'],
    ['/api/chat/runs/run_doesnotexist', 404, 'not_found'],
    ['/api/chat/nothing-here', 404, 'not_found'],
  ])('%s is %i %s', async (path, status, code) => {
    const response = await t.get(path);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
  });

  test('a bad cursor or limit is a 400', async () => {
    const unknown = await t.get(`/api/chat/threads/${threadId}/messages?before=msg_unknown`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_cursor');
    const other = await t.post({ content: 'elsewhere' });
    const foreign = await t.get(
      `/api/chat/threads/${threadId}/messages?before=${other.body.messageId}`,
    );
    expect(foreign.body.error.code).toBe('invalid_cursor');
    for (const limit of ['0', '201', 'abc', '1.5']) {
      const bad = await t.get(`/api/chat/threads/${threadId}/messages?limit=${limit}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('invalid_request');
    }
  });
});
