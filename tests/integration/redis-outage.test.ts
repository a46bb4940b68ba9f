import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { waitForValue } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { backdateOutboxOfRun, undeliveredRunIds } from '../support/rows';

// This test stops Redis, so it runs its own redis-server: never the shared one.
describe.skipIf(!redisTestsEnabled())('Redis unreachable at ingress', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ redisUrl: redis.url, env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await redis.up().catch(() => {}); // let close() reach it
    await t.close();
    await llm.stop();
    await redis.stop();
  });

  test('messages are accepted (202) while Redis is down and run once it is back', async () => {
    await redis.down();
    // Wait until our client has noticed, so the publish really meets a dead Redis.
    while (t.deps.redis.status === 'ready') await new Promise((r) => t.deps.redis.once('close', r));

    const threadId = `outage-${Date.now()}`;
    const first = await t.post({ content: 'sent while Redis is down', threadId });
    const second = await t.post({ content: 'and another one', threadId });
    expect([first.status, second.status]).toEqual([202, 202]);

    const ready = await t.get('/ready');
    expect(ready).toEqual({
      status: 503,
      body: { status: 'not_ready', checks: { database: 'ok', redis: 'unreachable' } },
    });
    expect((await t.get('/health')).status).toBe(200);
    expect(await t.get(`/api/chat/runs/${first.body.runId}`)).toMatchObject({
      status: 200,
      body: { status: 'queued' },
    });
    expect(await undeliveredRunIds(t.sql)).toEqual([first.body.runId, second.body.runId]);

    await redis.up();
    const events = await t.events.waitForTerminal(second.body.runId, 30_000);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    const firstEvents = t.events.forRun(first.body.runId).map((e) => e.type);
    expect(firstEvents).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    expect((await t.get('/ready')).status).toBe(200);
    const undelivered = () => undeliveredRunIds(t.sql);
    expect(await waitForValue(undelivered, (rows) => rows.length === 0)).toEqual([]);
  });

  test('a run whose announcement the relay has not sent yet does not start before it', async () => {
    await redis.down();
    while (t.deps.redis.status === 'ready') await new Promise((r) => t.deps.redis.once('close', r));
    const threadId = `straddle-${Date.now()}`;
    const first = await t.post({ content: 'accepted before the grace began', threadId });
    const second = await t.post({ content: 'accepted within the grace', threadId });
    expect([first.status, second.status]).toEqual([202, 202]);
    // The relay takes the first row at once and leaves the second for its grace period: the
    // first run then finishes while the second's announcement still waits in the outbox.
    await backdateOutboxOfRun(t.sql, first.body.runId, 60_000);

    await redis.up();
    await t.events.waitForTerminal(second.body.runId, 30_000);
    for (const run of [first, second]) {
      expect(t.events.forRun(run.body.runId).map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.completed',
      ]);
    }
    const undelivered = () => undeliveredRunIds(t.sql);
    expect(await waitForValue(undelivered, (rows) => rows.length === 0)).toEqual([]);
  });
});
