import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { createConsumer } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { addStreamRequest, addStreamRequests } from '../support/producer';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

const request = addStreamRequest;

describe.skipIf(!redisTestsEnabled())('consumer group ingress', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let producer: Redis;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, STREAM_CLAIM_IDLE_MS: '300', STREAM_MAX_DELIVERIES: '3' },
    });
    producer = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    producer.disconnect();
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());

  const runOf = (requestId: string) =>
    t.events.entries.find(
      (e) => e.type === 'agent.run.requested' && e.payload.requestId === requestId,
    );
  const rejectionOf = (requestId: string) =>
    t.events.entries.find((e) => e.type === 'agent.run.rejected' && e.requestId === requestId);

  test('a stream request makes a run like an HTTP post, its events carry the requestId', async () => {
    await request(producer, t.config.redis.streamKey, 'order-42', { content: 'from the stream' });
    await t.events.waitFor(() => runOf('order-42') !== undefined, 'the run to be announced');
    const announced = runOf('order-42');
    expect(announced?.payload).toMatchObject({ content: 'from the stream', requestId: 'order-42' });
    const events = await t.events.waitForTerminal(announced?.runId as string);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    const run = await t.get(`/api/chat/runs/${announced?.runId}`);
    expect(run.body).toMatchObject({
      status: 'completed',
      reply: { content: 'echo: from the stream' },
    });
    expect(await t.deps.queue.getJob(announced?.runId as string)).toBeDefined();
  });

  test('our own events are read and acknowledged: none stays pending in the group', async () => {
    const posted = await Promise.all(
      Array.from({ length: 20 }, (_, i) => t.post({ content: `over HTTP ${i}` })),
    );
    for (const { body } of posted) await t.events.waitForTerminal(body.runId);
    const { streamKey: key, consumerGroup: group } = t.config.redis;
    const state = async () => {
      const [last] = (await producer.xrevrange(key, '+', '-', 'COUNT', 1))[0] ?? [];
      const groups = (await producer.xinfo('GROUPS', key)) as unknown[][];
      const info = groups.find((g) => g[1] === group) ?? [];
      const pending = (await producer.xpending(key, group)) as [number];
      return {
        readUpTo: info[info.indexOf('last-delivered-id') + 1] === last,
        pending: Number(pending[0]),
      };
    };
    // The group reads past the last entry, and every entry it read is acknowledged.
    expect(await waitForValue(state, (s) => s.readUpTo && s.pending === 0)).toEqual({
      readUpTo: true,
      pending: 0,
    });
  });

  test('the same request twice makes one run', async () => {
    const before = await rowCounts(t.sql);
    await request(producer, t.config.redis.streamKey, 'twice-1', { content: 'once only' });
    await request(producer, t.config.redis.streamKey, 'twice-1', { content: 'once only' });
    await t.events.waitFor(() => runOf('twice-1') !== undefined, 'the run');
    // A marker after both: once it is handled, both copies were.
    await request(producer, t.config.redis.streamKey, 'twice-marker', { content: 'marker' });
    await t.events.waitFor(() => runOf('twice-marker') !== undefined, 'the marker');
    const announcements = t.events.entries.filter(
      (e) => e.type === 'agent.run.requested' && e.payload.requestId === 'twice-1',
    );
    expect(announcements).toHaveLength(1);
    expect((await rowCounts(t.sql)).runs - before.runs).toBe(2); // twice-1 and the marker
  });

  test('the same requestId with another payload is rejected idempotency_key_reused', async () => {
    await request(producer, t.config.redis.streamKey, 'reuse-1', { content: 'first' });
    await request(producer, t.config.redis.streamKey, 'reuse-1', { content: 'second' });
    await t.events.waitFor(() => rejectionOf('reuse-1') !== undefined, 'the rejection');
    expect(rejectionOf('reuse-1')?.payload.error.code).toBe('idempotency_key_reused');
  });

  test.each([
    ['an empty content', 'bad-1', { content: '   ' }, 'invalid_request'],
    ['an unknown field', 'bad-2', { content: 'x', extra: true }, 'invalid_request'],
    ['a wrong type', 'bad-3', { content: 42 }, 'invalid_request'],
    ['a payload that is not JSON', 'bad-4', '{nope', 'invalid_request'],
    ['a bad thread id', 'bad-5', { content: 'x', threadId: 'not ok!' }, 'invalid_request'],
  ])(
    '%s is rejected with the HTTP error, nothing stored',
    async (_name, requestId, payload, code) => {
      // (Runs and threads: earlier runs may still be writing replies and terminal events.)
      const { runs, threads } = await rowCounts(t.sql);
      await request(producer, t.config.redis.streamKey, requestId, payload);
      await t.events.waitFor(
        () => rejectionOf(requestId) !== undefined,
        `the rejection of ${requestId}`,
      );
      const rejection = rejectionOf(requestId);
      expect(rejection?.payload).toMatchObject({ requestId, error: { code } });
      expect(rejection?.runId).toBeUndefined();
      expect(await rowCounts(t.sql)).toMatchObject({ runs, threads });
    },
  );

  test('a bad requestId is rejected too', async () => {
    await request(producer, t.config.redis.streamKey, 'has space', { content: 'x' });
    await t.events.waitFor(() => rejectionOf('has space') !== undefined, 'the rejection');
    expect(rejectionOf('has space')?.payload.error.code).toBe('invalid_request');
  });

  test("a dead consumer's entry is claimed and served once", async () => {
    const key = t.config.redis.streamKey;
    const group = t.config.redis.consumerGroup;
    // Another consumer reads the request and dies before acknowledging it. (One transaction,
    // so it gets the entry before our consumer's blocked read can.)
    const [[, id], [, dead]] = (await addStreamRequest(
      producer.multi(),
      key,
      'orphan-1',
      '{"content":"left behind"}',
    )
      .xreadgroup('GROUP', group, 'dead-consumer', 'STREAMS', key, '>')
      .exec()) as [[null, string], [null, unknown]];
    expect(JSON.stringify(dead)).toContain(id);
    await t.events.waitFor(() => runOf('orphan-1') !== undefined, 'the orphan to be claimed');
    await t.events.waitForTerminal(runOf('orphan-1')?.runId as string);
    const pending = (await producer.xpending(key, group, '-', '+', 1000)) as [string][];
    expect(pending.map(([pendingId]) => pendingId)).not.toContain(id);
    expect(
      t.events.entries.filter(
        (e) => e.type === 'agent.run.requested' && e.payload.requestId === 'orphan-1',
      ),
    ).toHaveLength(1);
  });

  test('a poison entry is rejected delivery_failed after STREAM_MAX_DELIVERIES', async () => {
    const key = t.config.redis.streamKey;
    const group = t.config.redis.consumerGroup;
    // It has crashed consumers over and over: each claim counts a delivery.
    const [[, id]] = (await addStreamRequest(producer.multi(), key, 'poison-1', '{"content":"x"}')
      .xreadgroup('GROUP', group, 'crashing', 'STREAMS', key, '>')
      .exec()) as [[null, string]];
    for (let i = 0; i < 3; i++) await producer.xclaim(key, group, 'crashing', 0, id);
    await t.events.waitFor(() => rejectionOf('poison-1') !== undefined, 'the poison rejection');
    expect(rejectionOf('poison-1')?.payload.error.code).toBe('delivery_failed');
    expect(runOf('poison-1')).toBeUndefined();
    const pending = (await producer.xpending(key, group, '-', '+', 1000)) as [string][];
    expect(pending.map(([pendingId]) => pendingId)).not.toContain(id);
  });

  test('two consumers share 200 requests; none is served twice', async () => {
    const second = createConsumer({
      ...t.deps,
      config: { ...t.config, redis: { ...t.config.redis, consumerName: 'second-consumer' } },
    });
    await second.start();
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `shared-${i}`);
      await addStreamRequests(producer, t.config.redis.streamKey, ids);
      await t.events.waitFor(
        () => ids.every((id) => runOf(id) !== undefined),
        'all 200 shared requests to be announced',
      );
      const announced = t.events.entries.filter(
        (e) => e.type === 'agent.run.requested' && ids.includes(e.payload.requestId),
      );
      expect(announced).toHaveLength(200);
      expect(new Set(announced.map((e) => e.runId)).size).toBe(200);
      const consumers = (await producer.xinfo(
        'CONSUMERS',
        t.config.redis.streamKey,
        t.config.redis.consumerGroup,
      )) as unknown[][];
      expect(consumers.map((c) => c[1])).toContain('second-consumer');
    } finally {
      await second.stop();
    }
  });

  test('every terminal event is unique per run', () => {
    const counts = new Map<string, number>();
    for (const e of t.events.entries) {
      if (isTerminal(e.type)) counts.set(e.runId, (counts.get(e.runId) ?? 0) + 1);
    }
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });
});
