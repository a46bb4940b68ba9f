import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { runStreamKey } from '../../src/events/stream-writer';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { type FeedEvent, readFeed } from '../support/sse';

const WORDS = 'one two three four five six seven eight nine ten eleven twelve'.split(' ');
const slowStream = { kind: 'stream' as const, chunks: WORDS.map((w) => `${w} `), delayMs: 40 };

/** Stream ids in order, as Redis compares them. */
const after = (a: string, b: string) => {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as > bs : am > bm;
};
const ids = (events: FeedEvent[]) => events.map((e) => e.id);
const RESET = 'agent.feed.reset';

/**
 * `agent.feed.reset`: what a feed sends when the events after the client's position are no
 * longer retained. A run stream is made to "expire" as RUN_FEED_TTL_S would expire it: by
 * deleting `<stream key>:run:<runId>`; the main stream is trimmed past a position with XTRIM,
 * as `MAXLEN ~` would trim it under more traffic.
 */
describe.skipIf(!redisTestsEnabled())('feeds that never silently lose events', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let redis: Redis;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ listen: true, env: { OPENAI_BASE_URL: llm.url } });
    redis = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());
  const runFeed = (runId: string) => `${t.baseUrl}/api/chat/runs/${runId}/events`;
  const threadFeed = (threadId: string) => `${t.baseUrl}/api/chat/threads/${threadId}/events`;
  const runKey = (runId: string) => runStreamKey(t.deps.stream, runId);
  /** The ids a stream holds after `id`, straight from Redis. */
  const streamIdsAfter = async (key: string, id: string) =>
    ((await redis.xrange(key, `(${id}`, '+')) as [string, string[]][]).map(([entryId]) => entryId);
  const finished = async (content: string, threadId?: string) => {
    const { body } = await t.post({ content, ...(threadId ? { threadId } : {}) });
    await t.events.waitForTerminal(body.runId);
    return body as { runId: string; threadId: string };
  };
  /** The reset event's envelope: the SSE data holds exactly these keys. */
  const expectResetShape = (
    reset: FeedEvent | undefined,
    ids: { runId: string; threadId: string },
  ) => {
    expect(reset?.event).toBe(RESET);
    expect(Object.keys(reset?.data ?? {}).sort()).toEqual([
      'occurredAt',
      'payload',
      'runId',
      'threadId',
      'type',
    ]);
    expect(reset?.data.type).toBe(RESET);
    expect(reset?.data.runId).toBe(ids.runId);
    expect(reset?.data.threadId).toBe(ids.threadId);
    expect(new Date(reset?.data.occurredAt).toISOString()).toBe(reset?.data.occurredAt);
    expect(reset?.id).toMatch(/^\d+-\d+$/);
  };

  test('a run feed whose Last-Event-ID is unknown: a reset with the run view, then live after its id, nothing twice or missing', async () => {
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'count slowly' });
    // Wait until the run is streaming, so the reset is sent mid-run.
    await readFeed(runFeed(body.runId), {
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.delta'),
    });
    const feed = await readFeed(runFeed(body.runId), { lastEventId: '1-1' });
    expect(feed.status).toBe(200);
    expect(feed.ended).toBe(true);
    const [reset, ...rest] = feed.events;
    expectResetShape(reset, body);
    expect(Object.keys(reset?.data.payload)).toEqual(['run']);
    expect(reset?.data.payload.run).toMatchObject({
      id: body.runId,
      threadId: body.threadId,
      status: 'running',
      attempts: 1,
    });
    const resetId = reset?.id as string;
    // The reset's id is a position of the run's stream: after it come exactly the stream's
    // entries after it, each once, the feed ending after the terminal event.
    const whole = await readFeed(runFeed(body.runId));
    expect(ids(whole.events)).toContain(resetId);
    expect(ids(rest)).toEqual(ids(whole.events.filter((e) => after(e.id, resetId))));
    expect(ids(rest)).toEqual(await streamIdsAfter(runKey(body.runId), resetId));
    expect(rest.at(-1)?.event).toBe('agent.run.completed');
    expect(rest.some((e) => e.event === RESET)).toBe(false);
    // Resuming from the reset's id gives the same again, without a reset.
    const resumed = await readFeed(runFeed(body.runId), { lastEventId: resetId });
    expect(ids(resumed.events)).toEqual(ids(rest));
  });

  test('a run feed whose Last-Event-ID was trimmed from the run stream: a reset with the final view, then it closes', async () => {
    const run = await finished('trim my run stream');
    const whole = await readFeed(runFeed(run.runId));
    const [requested, started, ...more] = whole.events;
    const completed = more.at(-1);
    expect(completed?.event).toBe('agent.run.completed');
    // The stream loses its first two entries, as a trim from the head would drop them.
    await redis.xtrim(runKey(run.runId), 'MINID', more[0]?.id as string);
    const view = (await t.get(`/api/chat/runs/${run.runId}`)).body;
    for (const lastEventId of [requested?.id, started?.id, undefined]) {
      // Resuming from a trimmed id, or from the start (whose beginning is gone).
      const feed = await readFeed(runFeed(run.runId), { lastEventId });
      expect(feed.ended).toBe(true);
      expect(feed.events.map((e) => e.event)).toEqual([RESET]);
      expectResetShape(feed.events[0], run);
      expect(feed.events[0]?.data.payload).toEqual({ run: view });
      expect(view).toMatchObject({
        status: 'completed',
        reply: { content: 'echo: trim my run stream' },
      });
      // Its id is the terminal event's: resuming from it is the end of the run's feed.
      expect(feed.events[0]?.id).toBe(completed?.id as string);
    }
    const fromReset = await readFeed(runFeed(run.runId), { lastEventId: completed?.id });
    expect(fromReset).toMatchObject({ status: 200, ended: true, events: [] });
    // What is still retained resumes as before.
    const retained = await readFeed(runFeed(run.runId), { lastEventId: more[0]?.id });
    expect(ids(retained.events)).toEqual(ids(more.slice(1)));
  });

  test("a finished run's feed after its run stream expired: the reset with the final view, then it closes", async () => {
    const run = await finished('expire me');
    const before = await readFeed(runFeed(run.runId));
    // What RUN_FEED_TTL_S does after the terminal event.
    expect(await redis.del(runKey(run.runId))).toBe(1);
    const view = (await t.get(`/api/chat/runs/${run.runId}`)).body;
    expect(view).toMatchObject({ status: 'completed', reply: { content: 'echo: expire me' } });
    for (const lastEventId of [
      undefined,
      before.events[1]?.id,
      before.events.at(-1)?.id,
      'garbage',
    ]) {
      const feed = await readFeed(runFeed(run.runId), { lastEventId });
      expect(feed.status).toBe(200);
      expect(feed.ended).toBe(true);
      expect(feed.events.map((e) => e.event)).toEqual([RESET]);
      expectResetShape(feed.events[0], run);
      expect(feed.events[0]?.data.payload).toEqual({ run: view });
      // An empty stream's position: resuming from it finds the stream still gone, and the
      // same final view again.
      expect(feed.events[0]?.id).toBe('0-0');
    }
    const again = await readFeed(runFeed(run.runId), { lastEventId: '0-0' });
    expect(again.events.map((e) => [e.event, e.data.payload])).toEqual([[RESET, { run: view }]]);
    expect(again.ended).toBe(true);
  });

  test('a running run whose stream expired: a reset with the live view, then every entry written after it', async () => {
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'expire mid-run' });
    const start = await readFeed(runFeed(body.runId), {
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.delta'),
    });
    expect(start.events[0]?.event).toBe('agent.run.requested');
    await redis.del(runKey(body.runId));
    for (const lastEventId of [undefined, start.events.at(-1)?.id]) {
      const feed = await readFeed(runFeed(body.runId), { lastEventId });
      expect(feed.ended).toBe(true);
      const [reset, ...rest] = feed.events;
      expectResetShape(reset, body);
      expect(reset?.data.payload.run).toMatchObject({ id: body.runId });
      // After the reset: exactly what the (re-created) stream holds after the reset's id.
      expect(ids(rest)).toEqual(await streamIdsAfter(runKey(body.runId), reset?.id as string));
      if (lastEventId === undefined) {
        // Deleted just after the first delta, the reply has most of its way to go.
        expect(reset?.data.payload.run.status).toBe('running');
        expect(rest.at(-1)?.event).toBe('agent.run.completed');
      } else if (rest.length > 0) {
        expect(rest.at(-1)?.event).toBe('agent.run.completed');
      } else {
        // The run ended before this second feed: the reset carries its final view.
        expect(reset?.data.payload.run.status).toBe('completed');
      }
    }
    const run = (await t.get(`/api/chat/runs/${body.runId}`)).body;
    expect(run.status).toBe('completed');
  });

  test('a thread feed whose Last-Event-ID was trimmed from the main stream: a reset with the thread and its runs, then live', async () => {
    const threadId = `reset-thread-${Date.now()}`;
    const first = await finished('first message', threadId);
    const second = await finished('second message', threadId);
    const [requested] = t.events.forRun(first.runId);
    const [, secondStarted] = t.events.forRun(second.runId);
    // Trim the main stream past the first run's events and the second's request.
    await redis.xtrim(t.config.redis.streamKey, 'MINID', secondStarted?.id as string);
    const reading = readFeed(threadFeed(threadId), {
      lastEventId: requested?.id,
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.completed'),
    });
    // The reset is sent before the feed subscribes: wait for the subscription, then post.
    await waitForValue(
      () => t.deps.feeds.stats().subscribers,
      (subscribers) => subscribers > 0,
    );
    const thread = (await t.get(`/api/chat/threads/${threadId}`)).body;
    const runs = [
      (await t.get(`/api/chat/runs/${second.runId}`)).body,
      (await t.get(`/api/chat/runs/${first.runId}`)).body,
    ];
    const third = await t.post({ content: 'third message', threadId });
    const feed = await reading;
    const [reset, ...rest] = feed.events;
    expectResetShape(reset, { runId: '', threadId });
    expect(Object.keys(reset?.data.payload).sort()).toEqual(['runs', 'thread']);
    expect(reset?.data.payload.thread).toEqual(thread);
    expect(thread.messageCount).toBe(4);
    expect(reset?.data.payload.runs).toEqual(runs);
    // Then exactly the thread's entries of the main stream after the reset's id.
    const resetId = reset?.id as string;
    const mainAfter = (await redis.xrange(t.config.redis.streamKey, `(${resetId}`, '+')) as [
      string,
      string[],
    ][];
    const threadsAfter = mainAfter
      .filter(([, fields]) => fields[fields.indexOf('threadId') + 1] === threadId)
      .map(([id]) => id);
    expect(ids(rest)).toEqual(threadsAfter);
    expect(rest.map((e) => e.event)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    expect(rest.every((e) => e.data.runId === third.body.runId)).toBe(true);
    // Resuming from the reset's id: the same events, no reset.
    const resumed = await readFeed(threadFeed(threadId), {
      lastEventId: resetId,
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.completed'),
    });
    expect(ids(resumed.events)).toEqual(ids(rest));
  });

  test('a thread feed of up to 20 runs: the reset carries the 20 newest, newest first', async () => {
    const threadId = `reset-many-${Date.now()}`;
    const runIds: string[] = [];
    for (let i = 0; i < 22; i++)
      runIds.push((await t.post({ content: `m${i}`, threadId })).body.runId);
    await t.events.waitForTerminal(runIds.at(-1) as string);
    const feed = await readFeed(threadFeed(threadId), {
      lastEventId: '1-0',
      stopWhen: (events) => events.length >= 1,
    });
    const runs = feed.events[0]?.data.payload.runs as { id: string; status: string }[];
    expect(runs.map((r) => r.id)).toEqual(runIds.slice(2).reverse());
    expect(runs.every((r) => r.status === 'completed')).toBe(true);
  });

  test('Last-Event-IDs that are not stream ids get a reset, never a 5xx, and break nothing', async () => {
    const run = await finished('bad ids');
    const view = (await t.get(`/api/chat/runs/${run.runId}`)).body;
    const whole = await readFeed(runFeed(run.runId));
    const lastId = whole.events.at(-1)?.id;
    const bad = [
      'garbage',
      '$',
      '-1-1',
      '+',
      '-',
      `(${lastId}`,
      '1-',
      '01-1',
      '1.5-0',
      '18446744073709551616-0',
      '99999999999999-0',
      'x'.repeat(10 * 1024),
    ];
    for (const lastEventId of bad) {
      const feed = await readFeed(runFeed(run.runId), { lastEventId });
      expect({ lastEventId: lastEventId.slice(0, 30), status: feed.status }).toEqual({
        lastEventId: lastEventId.slice(0, 30),
        status: 200,
      });
      expect(feed.ended).toBe(true);
      expect(feed.events.map((e) => [e.event, e.id, e.data.payload])).toEqual([
        [RESET, lastId, { run: view }],
      ]);
      const onThread = await readFeed(threadFeed(run.threadId), {
        lastEventId,
        stopWhen: (events) => events.length >= 1,
      });
      expect(onThread.status).toBe(200);
      expect(onThread.events[0]?.event).toBe(RESET);
      expect(onThread.events[0]?.data.payload.runs).toEqual([view]);
    }
    // `0-0` is the position before the first entry: a run feed replays the whole run.
    const fromZero = await readFeed(runFeed(run.runId), { lastEventId: '0-0' });
    expect(ids(fromZero.events)).toEqual(ids(whole.events));
    // Nothing broken: the same replay, a new run's feed, readiness, no subscription left.
    expect(ids((await readFeed(runFeed(run.runId))).events)).toEqual(ids(whole.events));
    const next = await t.post({ content: 'still fine' });
    const nextFeed = await readFeed(runFeed(next.body.runId));
    expect(nextFeed.events.at(-1)?.event).toBe('agent.run.completed');
    expect((await fetch(`${t.baseUrl}/ready`)).status).toBe(200);
    const stats = await waitForValue(
      () => t.deps.feeds.stats(),
      (now) => now.subscribers === 0,
    );
    expect(stats).toEqual({ subscribers: 0, streams: 0 });
  });
});
