import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState, waitForValue } from '../../harness/wait';
import { createWorker } from '../../jobs/worker';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

/**
 * Right after Redis comes back, a worker's own connection can be up while the process's client
 * (which writes the events) is still reconnecting. The attempt must go on: its `started` was
 * committed with it and goes out through the outbox, late; the answer is never thrown away and
 * no attempt is spent. Made deterministic by closing only the process's client.
 */
describe.skipIf(!redisTestsEnabled())('a Redis hiccup during an attempt', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    // No worker yet: the run's job waits until the client is gone.
    t = await startTestApp({ worker: false, env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    if (t.deps.redis.status !== 'ready') await t.deps.redis.connect().catch(() => {});
    await t.close();
    await llm.stop();
  });

  test('the attempt goes on without its events, which follow once Redis answers: one attempt, nothing lost', async () => {
    const { body } = await t.post({ content: 'through the hiccup' });
    expect(await waitForJobState(t.deps.queue, body.runId, 'waiting')).toBe('waiting');
    await t.events.waitFor((all) => all.some((e) => e.runId === body.runId));
    // The process's client goes away; the worker about to start has a connection of its own.
    t.deps.redis.disconnect();
    const worker = createWorker(t.deps);
    try {
      // The attempt runs and commits its answer although no event could be written.
      const run = await waitForValue(
        async () => (await t.get(`/api/chat/runs/${body.runId}`)).body,
        (view) => view.status === 'completed',
        20_000,
      );
      expect(run).toMatchObject({
        status: 'completed',
        attempts: 1,
        reply: { content: 'echo: through the hiccup' },
      });
      expect(t.events.forRun(body.runId).map((e) => e.type)).toEqual(['agent.run.requested']);
      // Back: the relay sends what the attempt announced, in order.
      await t.deps.redis.connect();
      const events = await t.events.waitForTerminal(body.runId);
      expect(events.map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.completed',
      ]);
      expect(events[1]?.payload).toEqual({ attempt: 1 });
      expect(events[2]?.payload.attempts).toBe(1);
      expect(llm.requests).toHaveLength(1);
    } finally {
      await worker.close();
    }
  });
});
