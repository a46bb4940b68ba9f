import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { messageRolesOfRun } from '../support/rows';

const types = (entries: { type: string }[]) => entries.map((e) => e.type.replace('agent.run.', ''));

describe.skipIf(!redisTestsEnabled())('the run job against the fake model server', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, RUN_ATTEMPTS: '3', LLM_TIMEOUT_MS: '1000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());

  test('a message is answered: requested, started, completed; reply stored once', async () => {
    const { body } = await t.post({ content: 'What is 2+2?' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'completed']);
    const completed = events[2];
    expect(completed?.payload).toEqual({
      messageId: expect.stringMatching(/^msg_[a-z0-9]{24}$/),
      model: 'gpt-4o-mini',
      content: 'echo: What is 2+2?',
      usage: {
        promptTokens: expect.any(Number),
        completionTokens: expect.any(Number),
        totalTokens: expect.any(Number),
      },
      attempts: 1,
      durationMs: expect.any(Number),
      // One model call, no tools.
      steps: 1,
      toolCalls: 0,
      // The whole thread is the one message: nothing summarised, nothing else sent.
      memory: expect.objectContaining({
        contextTokens: 128_000,
        windowMessages: 1,
        summaryTokens: 0,
        summarisedMessages: 0,
        toolsTokens: 0,
      }),
    });
    expect(events[1]?.payload).toEqual({ attempt: 1 });

    // The SDK talked to the fake: one call, the run's model, the user message as the prompt.
    expect(llm.requests).toHaveLength(1);
    expect(llm.requests[0]?.body).toMatchObject({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is 2+2?' }],
    });
    expect(llm.requests[0]?.headers['x-stainless-retry-count'] ?? '0').toBe('0');

    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({
      status: 'completed',
      attempts: 1,
      error: null,
      reply: { id: completed?.payload.messageId, role: 'assistant', content: 'echo: What is 2+2?' },
      usage: completed?.payload.usage,
    });
    expect(run.body.startedAt).not.toBeNull();
    expect(run.body.finishedAt).not.toBeNull();
    expect(await messageRolesOfRun(t.sql, body.runId)).toEqual(['assistant', 'user']);
  });

  test('a retryable error (500) then success: completed on attempt 2', async () => {
    llm.enqueue({ kind: 'status', status: 500 });
    const { body } = await t.post({ content: 'flaky' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'started', 'completed']);
    expect(
      events.filter((e) => e.type === 'agent.run.started').map((e) => e.payload.attempt),
    ).toEqual([1, 2]);
    expect(events[3]?.payload.attempts).toBe(2);
    expect(llm.requests).toHaveLength(2);
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body).toMatchObject({
      status: 'completed',
      attempts: 2,
    });
  });

  test('a timeout is retried like a 5xx', async () => {
    llm.enqueue({ kind: 'stall' });
    const { body } = await t.post({ content: 'slow' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'started', 'completed']);
  });

  test('a stream that stops mid-answer for LLM_TIMEOUT_MS is a timeout: retried, the partial answer dropped', async () => {
    // The first piece at once, the second 10 s later: far past the 1 s LLM_TIMEOUT_MS.
    llm.enqueue({ kind: 'stream', chunks: ['partial ', 'answer'], delayMs: 10_000 });
    const { body } = await t.post({ content: 'stall mid-stream' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toContain('completed');
    expect(events.filter((e) => e.type === 'agent.run.started')).toHaveLength(2);
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({ status: 'completed', attempts: 2 });
    expect(run.body.reply.content).toBe('echo: stall mid-stream');
  });

  test('a 401 fails the run after one call, with no retry', async () => {
    llm.enqueue({ kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'who am I?' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'failed']);
    expect(events[2]?.payload).toEqual({
      error: { code: 'llm_unauthorized', message: expect.stringContaining('401') },
      attempts: 1,
    });
    expect(llm.requests).toHaveLength(1);
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({ status: 'failed', attempts: 1, reply: null });
    expect(run.body.error.code).toBe('llm_unauthorized');
    expect(await waitForJobState(t.deps.queue, body.runId, 'failed')).toBe('failed');
    const job = await t.deps.queue.getJob(body.runId);
    // Finished jobs are kept for Bull Board, bounded in age and count.
    expect(job?.opts.removeOnFail).toEqual({ age: 7 * 24 * 3600, count: 50_000 });
    expect(job?.opts.removeOnComplete).toEqual({ age: 24 * 3600, count: 10_000 });
  });

  test('garbage from the model is llm_bad_response, retried until attempts run out', async () => {
    llm.enqueue({ kind: 'garbage' }, { kind: 'no-choices' }, { kind: 'empty' });
    const { body } = await t.post({ content: 'nonsense?' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'started', 'started', 'failed']);
    expect(events.at(-1)?.payload).toEqual({
      error: { code: 'llm_bad_response', message: expect.any(String) },
      attempts: 3,
    });
    expect(llm.requests).toHaveLength(3);
  });

  test('exactly one terminal event per run across all of the above', async () => {
    const byRun = new Map<string, number>();
    for (const e of t.events.entries) {
      if (isTerminal(e.type)) byRun.set(e.runId, (byRun.get(e.runId) ?? 0) + 1);
    }
    expect(byRun.size).toBeGreaterThanOrEqual(5);
    expect([...byRun.values()].every((n) => n === 1)).toBe(true);
  });

  test('two messages back to back on one thread run one after the other', async () => {
    llm.setDefault((req) => ({
      kind: 'reply',
      delayMs: 150,
      content: `reply to ${req.body.messages.at(-1).content}`,
    }));
    const threadId = `serial-${Date.now()}`;
    const first = await t.post({ content: 'first', threadId });
    const second = await t.post({ content: 'second', threadId });
    await t.events.waitForTerminal(second.body.runId);
    const thread = t.events.entries.filter((e) => e.threadId === threadId);
    const order = thread.map((e) => `${e.runId === first.body.runId ? 1 : 2}:${types([e])[0]}`);
    expect(order.indexOf('2:started')).toBeGreaterThan(order.indexOf('1:completed'));

    // The second prompt holds the first exchange, reply included, in conversation order.
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[1]?.body.messages).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'reply to first' },
      { role: 'user', content: 'second' },
    ]);
    const listed = await t.get(`/api/chat/threads/${threadId}/messages`);
    expect(listed.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'first',
      'reply to first',
      'second',
      'reply to second',
    ]);
  });
});

describe.skipIf(!redisTestsEnabled())('no model server configured', () => {
  test('the run fails with llm_not_configured', async () => {
    const t = await startTestApp();
    try {
      const { status, body } = await t.post({ content: 'anyone there?' });
      expect(status).toBe(202);
      const events = await t.events.waitForTerminal(body.runId);
      expect(types(events)).toEqual(['requested', 'started', 'failed']);
      expect(events[2]?.payload.error.code).toBe('llm_not_configured');
    } finally {
      await t.close();
    }
  });
});
