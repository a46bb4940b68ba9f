import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

/** 400 pieces, 50 ms apart: a run that stays running until something stops it. */
const SLOW = {
  kind: 'stream' as const,
  chunks: Array.from({ length: 400 }, (_, i) => `${i} `),
  delayMs: 50,
};

const contents = (t: TestApp, threadId: string) =>
  t
    .get(`/api/chat/threads/${threadId}/messages`)
    .then((r) => r.body.messages.map((m: { content: string }) => m.content));

describe.skipIf(!redisTestsEnabled())('multitask, while the thread’s run waits its turn', () => {
  let t: TestApp;
  // No worker: a posted run stays queued.
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());
  const thread = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

  test('enqueue (the default) waits its turn: both runs stay, the second without a job', async () => {
    const threadId = thread('enqueue');
    const first = await t.post({ content: 'one', threadId });
    const second = await t.post({ content: 'two', threadId, multitask: 'enqueue' });
    expect(second.status).toBe(202);
    expect((await t.get(`/api/chat/runs/${first.body.runId}`)).body.status).toBe('queued');
    expect(await t.deps.queue.getJob(second.body.runId)).toBeUndefined();
  });

  test('reject: 409 thread_busy naming the unfinished run, and nothing stored or announced', async () => {
    const threadId = thread('reject');
    const first = await t.post({ content: 'one', threadId });
    await t.events.waitFor((all) => all.some((e) => e.runId === first.body.runId));
    const before = await rowCounts(t.sql);
    const streamLength = await t.deps.redis.xlen(t.config.redis.streamKey);
    const second = await t.post({ content: 'two', threadId, multitask: 'reject' });
    expect(second).toMatchObject({
      status: 409,
      body: { error: { code: 'thread_busy', details: { runId: first.body.runId } } },
    });
    expect(await rowCounts(t.sql)).toEqual(before);
    expect(await t.deps.redis.xlen(t.config.redis.streamKey)).toBe(streamLength);
    expect(await contents(t, threadId)).toEqual(['one']);
    // An idle thread takes it.
    expect((await t.post({ content: 'alone', multitask: 'reject' })).status).toBe(202);
  });

  test('reject with an Idempotency-Key stores no key: the same request later, once idle, is taken', async () => {
    const threadId = thread('reject-key');
    const first = await t.post({ content: 'one', threadId });
    const key = { 'idempotency-key': `reject-${threadId}` };
    const refused = await t.post({ content: 'two', threadId, multitask: 'reject' }, key);
    expect(refused.status).toBe(409);
    await t.request(`/api/chat/runs/${first.body.runId}/cancel`, { method: 'POST' });
    const taken = await t.post({ content: 'two', threadId, multitask: 'reject' }, key);
    expect(taken.status).toBe(202);
  });

  test('interrupt: the queued run is cancelled (by interrupt, attempts 0), its message stays, the new run has the job', async () => {
    const threadId = thread('interrupt');
    const first = await t.post({ content: 'one', threadId });
    const second = await t.post({ content: 'two', threadId, multitask: 'interrupt' });
    expect(second.status).toBe(202);
    const events = await t.events.waitForTerminal(first.body.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'agent.run.cancelled',
      payload: { reason: null, by: 'interrupt', attempts: 0 },
    });
    expect((await t.get(`/api/chat/runs/${first.body.runId}`)).body).toMatchObject({
      status: 'cancelled',
      cancel: { by: 'interrupt' },
    });
    expect(await contents(t, threadId)).toEqual(['one', 'two']);
    const job = await waitForValue(
      () => t.deps.queue.getJob(second.body.runId),
      (found) => found !== undefined,
    );
    expect(job?.data).toEqual({ runId: second.body.runId });
    expect(await t.deps.queue.getJob(first.body.runId)).toBeUndefined();
  });

  test('rollback: the queued runs are cancelled (by rollback) and their messages deleted', async () => {
    const threadId = thread('rollback');
    const first = await t.post({ content: 'one', threadId });
    const second = await t.post({ content: 'two', threadId });
    const third = await t.post({ content: 'three', threadId, multitask: 'rollback' });
    expect(third.status).toBe(202);
    for (const run of [first, second]) {
      const events = await t.events.waitForTerminal(run.body.runId);
      expect(events.at(-1)?.payload).toMatchObject({ by: 'rollback', attempts: 0 });
    }
    expect(await contents(t, threadId)).toEqual(['three']);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.messageCount).toBe(1);
    // The run records stay, cancelled.
    expect((await t.get(`/api/chat/runs/${second.body.runId}`)).body.status).toBe('cancelled');
  });

  test('multitask is part of the idempotency hash', async () => {
    const threadId = thread('hash');
    const key = { 'idempotency-key': `hash-${threadId}` };
    expect((await t.post({ content: 'same', threadId }, key)).status).toBe(202);
    const other = await t.post({ content: 'same', threadId, multitask: 'interrupt' }, key);
    expect(other).toMatchObject({
      status: 409,
      body: { error: { code: 'idempotency_key_reused' } },
    });
    // Naming the default is the same request.
    expect((await t.post({ content: 'same', threadId, multitask: 'enqueue' }, key)).status).toBe(
      202,
    );
  });

  test.each([['sometimes'], [3], [''], [['reject']]])(
    'a bad multitask (%p) is a 400 and stores nothing',
    async (multitask) => {
      const before = await rowCounts(t.sql);
      const response = await t.post({ content: 'x', multitask });
      expect(response).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
      expect(await rowCounts(t.sql)).toEqual(before);
    },
  );
});

describe.skipIf(!redisTestsEnabled())('multitask, while the thread’s run is running', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());

  for (const mode of ['interrupt', 'rollback'] as const) {
    test(`${mode}: the running run is stopped, then the new one runs with${mode === 'rollback' ? 'out' : ''} its message`, async () => {
      llm.setDefault(SLOW);
      const threadId = `${mode}-running-${Date.now()}`;
      const first = await t.post({ content: 'first', threadId });
      const [call] = await llm.waitForRequests(1);
      llm.setDefault({ kind: 'reply' });
      const second = await t.post({ content: 'second', threadId, multitask: mode });
      expect(second.status).toBe(202);
      const events = await t.events.waitForTerminal(second.body.runId);
      expect(events.filter((e) => isTerminal(e.type)).map((e) => e.type)).toEqual([
        'agent.run.completed',
      ]);
      const firstEvents = t.events.forRun(first.body.runId).filter((e) => isTerminal(e.type));
      expect(firstEvents.map((e) => e.type)).toEqual(['agent.run.cancelled']);
      expect(firstEvents[0]?.payload).toMatchObject({ by: mode, attempts: 1 });
      expect(
        await waitForValue(
          () => call?.closedAt,
          (at) => at !== undefined,
        ),
      ).toBeDefined();
      // The new run's prompt: the first message stays without a reply (interrupt), or is gone.
      const prompt = llm.requests.at(-1)?.body.messages.map((m: { content: string }) => m.content);
      expect(prompt).toEqual(mode === 'interrupt' ? ['first', 'second'] : ['second']);
      expect(await contents(t, threadId)).toEqual(
        mode === 'interrupt' ? ['first', 'second', 'echo: second'] : ['second', 'echo: second'],
      );
    });
  }
});

describe.skipIf(!redisTestsEnabled())('CHAT_MULTITASK', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, env: { CHAT_MULTITASK: 'reject' } });
  });
  afterAll(() => t.close());

  test('sets the mode of a message that names none', async () => {
    const threadId = `default-${Date.now()}`;
    expect((await t.post({ content: 'one', threadId })).status).toBe(202);
    expect((await t.post({ content: 'two', threadId })).status).toBe(409);
    expect((await t.post({ content: 'three', threadId, multitask: 'enqueue' })).status).toBe(202);
  });
});
