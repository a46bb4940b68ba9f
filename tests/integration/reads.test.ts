import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { buildEvent } from '../../src/events/event';
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
      title: null,
      summary: null,
      summaryThroughMessageId: null,
      metadata: {},
      // No worker here: its runs wait, so the thread is busy; the newest is the last posted.
      status: 'busy',
      lastRunId: expect.stringMatching(/^run_/),
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

  test('a user message shows no tool fields', async () => {
    const { body } = await t.get(`/api/chat/threads/${threadId}/messages?limit=1`);
    expect(body.messages[0]).toEqual({
      id: ids[6],
      threadId,
      runId: expect.any(String),
      role: 'user',
      content: 'message 7',
      createdAt: expect.any(String),
    });
  });

  test("a run's tool steps: shown with their fields, paged by their place in the slot", async () => {
    const stepsThread = `steps-${Date.now()}`;
    const first = await t.post({ content: 'weather?', threadId: stepsThread });
    const claimed = await t.deps.db.startRunAttempt({
      runId: first.body.runId,
      now: new Date(),
      startedEvent: (run) =>
        buildEvent(
          'agent.run.started',
          { runId: run.id, threadId: run.threadId },
          { attempt: run.attempts },
        ),
    });
    expect(claimed?.run.status).toBe('running');
    const committed = await t.deps.db.commitStep({
      runId: first.body.runId,
      now: new Date(),
      messages: [
        {
          id: 'msg_stepcall',
          position: 0,
          role: 'assistant',
          content: '',
          toolCalls: [{ toolCallId: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
          tokens: 14,
        },
        {
          id: 'msg_stepresult',
          position: 1,
          role: 'tool',
          content: 'HTTP 500: down',
          toolCallId: 'call_1',
          name: 'weather',
          isError: true,
          tokens: 10,
        },
      ],
      events: [],
      steps: 1,
      toolCallCount: 1,
    });
    expect(committed.kind).toBe('committed');
    const second = await t.post({ content: 'and tomorrow?', threadId: stepsThread });

    const base = `/api/chat/threads/${stepsThread}/messages`;
    const newest = await t.get(`${base}?limit=2`);
    expect(newest.body.messages).toEqual([
      {
        id: 'msg_stepresult',
        threadId: stepsThread,
        runId: first.body.runId,
        role: 'tool',
        content: 'HTTP 500: down',
        toolCallId: 'call_1',
        name: 'weather',
        isError: true,
        createdAt: expect.any(String),
      },
      expect.objectContaining({ id: second.body.messageId, role: 'user' }),
    ]);
    expect(newest.body).toMatchObject({ hasMore: true, nextBefore: 'msg_stepresult' });
    const older = await t.get(`${base}?limit=2&before=msg_stepresult`);
    expect(older.body.messages).toEqual([
      expect.objectContaining({ id: first.body.messageId, role: 'user' }),
      {
        id: 'msg_stepcall',
        threadId: stepsThread,
        runId: first.body.runId,
        role: 'assistant',
        content: '',
        toolCalls: [{ toolCallId: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
        createdAt: expect.any(String),
      },
    ]);
    expect(older.body).toMatchObject({ hasMore: false, nextBefore: null });
    const run = await t.get(`/api/chat/runs/${first.body.runId}`);
    expect(run.body).toMatchObject({ status: 'running', steps: 1, toolCalls: 1, reply: null });
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
      tools: [],
      clientTools: [],
      pendingAction: null,
      steps: 0,
      toolCalls: 0,
      memory: null,
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
