import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { buildEvent } from '../../src/events/event';
import { createLogger } from '../../src/logger';
import { type RunningRoles, startRoles } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { outboxOfRun } from '../support/rows';

/**
 * A worker can die between committing its attempt (with the `agent.run.started` row) and getting
 * that row onto the stream. The relay would send it seconds later, after whatever the next
 * attempt announced; the next attempt sends it first instead, so the run's events stay in order.
 * The dead attempt is made here as a dying worker leaves it: claimed in the store, its row never
 * delivered. Then a worker starts and takes the job.
 */
describe.skipIf(!redisTestsEnabled())('an attempt whose worker died before announcing it', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let worker: RunningRoles | undefined;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    // The api role alone: jobs wait until a test starts a worker.
    t = await startTestApp({ worker: false, env: { OPENAI_BASE_URL: llm.url } });
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  /** What a worker that dies right after claiming leaves: the attempt, its row undelivered. */
  async function dieAfterClaiming(runId: string) {
    const claimed = await t.deps.db.startRunAttempt({
      runId,
      now: new Date(),
      startedEvent: (run) =>
        buildEvent(
          'agent.run.started',
          { runId: run.id, threadId: run.threadId },
          { attempt: run.attempts },
        ),
    });
    expect(claimed?.row?.deliveredAt).toBeNull();
    expect(claimed?.earlier).toEqual([]);
  }

  async function acceptedRun(content: string): Promise<string> {
    const { status, body } = await t.post({ content });
    expect(status).toBe(202);
    await t.events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.requested'),
      'the run to be announced',
    );
    return body.runId;
  }

  const allDelivered = (runId: string) =>
    waitForValue(
      () => outboxOfRun(t.sql, runId),
      (rows) => rows.every((row) => row.delivered),
    );

  const startWorker = async () => {
    worker = await startRoles(t.config, {
      roles: ['worker'],
      overrides: { logger: createLogger('silent') },
    });
  };

  test('the next attempt sends the dead one’s started first, then its own, then the end', async () => {
    const runId = await acceptedRun('outlive a worker');
    await dieAfterClaiming(runId);

    await startWorker();
    const events = await t.events.waitForTerminal(runId);
    expect(events.map((e) => [e.type, e.payload?.attempt ?? e.payload?.attempts])).toEqual([
      ['agent.run.requested', undefined],
      ['agent.run.started', 1],
      ['agent.run.started', 2],
      ['agent.run.completed', 2],
    ]);
    // Delivered and marked (just after the XADDs): the relay has nothing of this run to send late.
    await allDelivered(runId);
  });

  test('a run cancelled meanwhile: its started, then its cancel, in that order', async () => {
    const runId = await acceptedRun('cancelled after a crash');
    await dieAfterClaiming(runId);
    // The run is running as far as the store knows: the cancel marks it cancelling, and the
    // job (no worker has it) is what ends it.
    const cancel = await t.request(`/api/chat/runs/${runId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect((await t.get(`/api/chat/runs/${runId}`)).body.status).toBe('cancelling');

    await startWorker();
    const events = await t.events.waitForTerminal(runId);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.cancelled',
    ]);
    await allDelivered(runId);
  });
});
