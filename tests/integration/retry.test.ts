import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

// What Bull Board's Retry button does (job.retry on a failed job), without the browser.
describe.skipIf(!redisTestsEnabled())('an operator retries a failed run', () => {
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

  test('the run goes back through running to completed, with started and a new terminal event', async () => {
    llm.enqueue({ kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'try again later' });
    await t.events.waitForTerminal(body.runId);
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body).toMatchObject({
      status: 'failed',
      attempts: 1,
    });

    expect(await waitForJobState(t.deps.queue, body.runId, 'failed')).toBe('failed');
    const job = await t.deps.queue.getJob(body.runId);
    await job?.retry('failed');

    await t.events.waitFor(
      (all) =>
        all.filter((e) => e.runId === body.runId && e.type === 'agent.run.completed').length === 1,
      'the completed event after the retry',
    );
    const events = t.events.forRun(body.runId);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.failed',
      'agent.run.started',
      'agent.run.completed',
    ]);
    expect(events[3]?.payload).toEqual({ attempt: 2 });
    expect(events[4]?.payload.attempts).toBe(2);
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({
      status: 'completed',
      attempts: 2,
      error: null,
      reply: { content: 'echo: try again later' },
    });
  });
});
