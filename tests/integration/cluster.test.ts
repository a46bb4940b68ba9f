import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Cluster } from 'ioredis';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedisCluster } from '../../harness/private-redis';
import { waitForJobState } from '../../harness/wait';
import { createRedisClient } from '../../src/redis/client';
import { hashTagOf } from '../../src/redis/cluster-keys';
import { startTestApp, type TestApp } from '../support/app';
import { addStreamRequest } from '../support/producer';
import { redisTestsEnabled } from '../support/redis';
import { readFeed } from '../support/sse';

const types = (entries: { type: string }[]) => entries.map((e) => e.type.replace('agent.run.', ''));

// A Redis Cluster of three private redis-server masters, started here: never the shared Redis.
describe.skipIf(!redisTestsEnabled())('against a Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  let cluster: PrivateRedisCluster | undefined;
  let llm: FakeLlm | undefined;
  let t: TestApp | undefined;
  let client: Cluster | undefined;
  const app = () => t as TestApp;

  beforeAll(async () => {
    cluster = await PrivateRedisCluster.start(3);
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      listen: true,
      env: { OPENAI_BASE_URL: llm.url, REDIS_CLUSTER_NODES: cluster.nodes },
    });
    const made = createRedisClient(t.config.redis);
    if (!(made instanceof Cluster)) throw new Error('expected a Cluster client');
    client = made;
  });
  afterAll(async () => {
    client?.disconnect();
    await t?.close();
    await llm?.stop();
    await cluster?.stop();
  });

  test('the service runs on a Cluster client, its keys carry one hash tag', async () => {
    expect(app().deps.redis).toBeInstanceOf(Cluster);
    const { streamKey, queuePrefix } = app().config.redis;
    expect(hashTagOf(streamKey)).toBe(streamKey.slice(1, -1));
    expect(hashTagOf(queuePrefix)).toBe(hashTagOf(streamKey));
    expect(await app().get('/ready')).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
    });
  });

  test('a message in, a completed event out; the run is completed', async () => {
    const { status, body } = await app().post({ content: 'Hello, cluster' });
    expect(status).toBe(202);
    const events = await app().events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'completed']);
    expect(events[2]?.payload).toMatchObject({ content: 'echo: Hello, cluster', attempts: 1 });
    const run = await app().get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({
      status: 'completed',
      reply: { role: 'assistant', content: 'echo: Hello, cluster' },
    });
    await waitForJobState(app().deps.queue, body.runId, 'completed');
    // The run's own stream (same slot as the main one) replays through the feed reader.
    const feed = await readFeed(`${app().baseUrl}/api/chat/runs/${body.runId}/events`);
    expect(feed.ended).toBe(true);
    expect(feed.events.map((e) => e.event).at(-1)).toBe('agent.run.completed');
  });

  test('a retried run and a stream request complete too; a bad stream request is rejected', async () => {
    llm?.enqueue({ kind: 'status', status: 500 });
    const { body } = await app().post({ content: 'flaky' });
    const events = await app().events.waitForTerminal(body.runId);
    expect(types(events)).toEqual(['requested', 'started', 'started', 'completed']);

    await addStreamRequest(client as Cluster, app().config.redis.streamKey, 'cluster-1', {
      content: 'from the stream',
    });
    await app().events.waitFor(
      (all) => all.some((e) => e.payload?.requestId === 'cluster-1'),
      'the stream request to be announced',
    );
    const announced = app().events.entries.find((e) => e.payload?.requestId === 'cluster-1');
    expect(types(await app().events.waitForTerminal(announced?.runId as string))).toEqual([
      'requested',
      'started',
      'completed',
    ]);
    // A refused request: the rejection and the XACK go out in one MULTI, on the stream's slot.
    await addStreamRequest(client as Cluster, app().config.redis.streamKey, 'cluster-2', {
      content: '  ',
    });
    const [rejected] = (
      await app().events.waitFor(
        (all) => all.some((e) => e.type === 'agent.run.rejected'),
        'the rejection',
      )
    ).filter((e) => e.type === 'agent.run.rejected');
    expect(rejected).toMatchObject({
      requestId: 'cluster-2',
      payload: { error: { code: 'invalid_request' } },
    });
  });

  test('every key the service wrote is in one slot, on one master', async () => {
    const masters = (client as Cluster).nodes('master');
    expect(masters).toHaveLength(3);
    // The cluster is private: every key in it was written by the service (or this test).
    const keysPerMaster = await Promise.all(masters.map((master) => master.keys('*')));
    const holding = keysPerMaster.filter((keys) => keys.length > 0);
    expect(holding).toHaveLength(1);
    const keys = holding[0] as string[];
    const tag = hashTagOf(app().config.redis.streamKey);
    expect(keys.filter((key) => hashTagOf(key) !== tag)).toEqual([]);
    // The main stream, a run's stream and the queue's keys are all there.
    expect(keys).toContain(app().config.redis.streamKey);
    expect(keys.some((key) => key.includes(':run:'))).toBe(true);
    expect(
      keys.some((key) => key.startsWith(`${app().config.redis.queuePrefix}:agent-runs:`)),
    ).toBe(true);
    const slots = new Set(
      await Promise.all(keys.map((key) => (client as Cluster).cluster('KEYSLOT', key))),
    );
    expect(slots.size).toBe(1);
  });

  test('closing the test app removes its keys from every master', async () => {
    await app().close();
    t = undefined;
    const masters = (client as Cluster).nodes('master');
    const left = await Promise.all(masters.map((master) => master.keys('*')));
    expect(left.flat()).toEqual([]);
  });
});
