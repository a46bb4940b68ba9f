import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { MAX_RATE_LIMITED_TRIES } from '../../jobs/agent-run';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

describe.skipIf(!redisTestsEnabled())('rate limits (429)', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, RUN_ATTEMPTS: '2' } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());

  test('a 429 pauses the queue for retry-after and spends no attempt', async () => {
    llm.enqueue({ kind: 'rate-limit', retryAfterS: 1 });
    const { body } = await t.post({ content: 'busy?' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.started',
      'agent.run.completed',
    ]);
    // Both starts are attempt 1: the rate-limited try was given back.
    expect(
      events.filter((e) => e.type === 'agent.run.started').map((e) => e.payload.attempt),
    ).toEqual([1, 1]);
    expect(events[3]?.payload.attempts).toBe(1);
    // The queue waited at least the retry-after (a lower bound only: never a timing ceiling).
    const [first, second] = llm.requests;
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(900);
  });

  test('a model that always answers 429 still ends in agent.run.failed', async () => {
    llm.setDefault({ kind: 'status', status: 429, headers: { 'retry-after-ms': '20' } });
    const { body } = await t.post({ content: 'never free' });
    const events = await t.events.waitForTerminal(body.runId);
    const failed = events.at(-1);
    expect(failed?.type).toBe('agent.run.failed');
    expect(failed?.payload.error.code).toBe('llm_rate_limited');
    expect(failed?.payload.attempts).toBe(0);
    expect(llm.requests).toHaveLength(MAX_RATE_LIMITED_TRIES);
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body).toMatchObject({
      status: 'failed',
      attempts: 0,
    });
  });
});
