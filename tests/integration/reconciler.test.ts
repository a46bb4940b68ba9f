import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { UnrecoverableError, Worker } from 'bullmq';
import { isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { waitForJobState } from '../../harness/wait';
import { RUN_QUEUE } from '../../jobs/catalog';
import { createWorker } from '../../jobs/worker';
import { createRedisClient } from '../../src/redis/client';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

// Redis restarts without persistence and loses every job: the reconciler must notice.
describe.skipIf(!redisTestsEnabled())('reconciler: Redis lost its data', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      worker: false,
      redisUrl: redis.url,
      env: { OPENAI_BASE_URL: llm.url, RUN_STALE_MS: '1000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    await redis.stop();
  });

  test('queued runs whose jobs vanished are enqueued again and complete once', async () => {
    const threadA = `lost-a-${Date.now()}`;
    const a1 = await t.post({ content: 'a1', threadId: threadA });
    const a2 = await t.post({ content: 'a2', threadId: threadA });
    const b1 = await t.post({ content: 'b1' });
    expect(await t.deps.queue.getJobState(a1.body.runId)).toBe('waiting');

    await redis.down();
    await redis.up(); // empty: no jobs, no stream
    await new Promise((resolve) =>
      t.deps.redis.status === 'ready' ? resolve(null) : t.deps.redis.once('ready', resolve),
    );
    expect(await t.deps.redis.dbsize()).toBe(0);

    const worker = createWorker(t.deps);
    try {
      for (const run of [a1, a2, b1]) await t.events.waitForTerminal(run.body.runId);
      for (const run of [a1, a2, b1]) {
        const terminal = t.events.forRun(run.body.runId).filter((e) => isTerminal(e.type));
        expect(terminal.map((e) => e.type)).toEqual(['agent.run.completed']);
        expect((await t.get(`/api/chat/runs/${run.body.runId}`)).body.status).toBe('completed');
      }
      // The thread's order held: a2 started after a1 completed.
      const order = t.events.entries
        .filter((e) => e.threadId === threadA)
        .map((e) => `${e.runId === a1.body.runId ? 'a1' : 'a2'}:${e.type.slice(10)}`);
      expect(order.indexOf('a2:started')).toBeGreaterThan(order.indexOf('a1:completed'));
    } finally {
      await worker.close();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('bounded Redis', () => {
  test('the stream is trimmed to about REDIS_STREAM_MAXLEN', async () => {
    const t = await startTestApp({ worker: false, env: { REDIS_STREAM_MAXLEN: '50' } });
    try {
      for (let i = 0; i < 300; i++) await t.post({ content: `m${i}` });
      const length = await t.deps.redis.xlen(t.config.redis.streamKey);
      // MAXLEN ~ trims whole nodes (100 entries by default), so "about" means within a node.
      expect(length).toBeGreaterThanOrEqual(50);
      expect(length).toBeLessThanOrEqual(150);
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('reconciler: a job given up outside its run', () => {
  test('a head run whose job failed for good is failed run_aborted at the next sweep, not RUN_STALE_MS later', async () => {
    // RUN_STALE_MS at its default (5 min): only a failed job may end the run this soon.
    const t = await startTestApp({ worker: false });
    // A worker without our run job or its safety net: it fails the job for good without
    // touching the run, as BullMQ does to a job that stalled too often.
    const outsider = new Worker(
      RUN_QUEUE,
      async () => {
        throw new UnrecoverableError('job stalled more than allowable limit');
      },
      {
        connection: createRedisClient(t.config.redis, { maxRetriesPerRequest: null }),
        prefix: t.config.redis.queuePrefix,
      },
    );
    try {
      const { body } = await t.post({ content: 'abandoned' });
      expect(await waitForJobState(t.deps.queue, body.runId, 'failed')).toBe('failed');
      await outsider.close();
      expect((await t.get(`/api/chat/runs/${body.runId}`)).body.status).toBe('queued');
      await t.reconciler.sweep();
      const events = await t.events.waitForTerminal(body.runId);
      expect(events.filter((e) => isTerminal(e.type)).map((e) => e.type)).toEqual([
        'agent.run.failed',
      ]);
      expect((await t.get(`/api/chat/runs/${body.runId}`)).body).toMatchObject({
        status: 'failed',
        error: { code: 'run_aborted' },
      });
    } finally {
      await outsider.close();
      await t.close();
    }
  });
});
