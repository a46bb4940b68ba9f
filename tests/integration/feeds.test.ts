import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState, waitForValue } from '../../harness/wait';
import { runStreamKey } from '../../src/events/stream-writer';
import type { Entry } from '../../src/feeds/feed-reader';
import { encodeEntry, formatEntry } from '../../src/feeds/sse';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { type FeedEvent, readFeed } from '../support/sse';

const WORDS = 'one two three four five six seven eight nine ten eleven twelve'.split(' ');
const chunks = WORDS.map((w) => `${w} `);
const slowStream = { kind: 'stream' as const, chunks, delayMs: 30 };

const summary = (events: FeedEvent[]) =>
  events.map((e) => (e.event === 'agent.run.delta' ? `delta:${e.data.payload.attempt}` : e.event));
const replyOf = (events: FeedEvent[], attempt: number) =>
  events
    .filter((e) => e.event === 'agent.run.delta' && e.data.payload.attempt === attempt)
    .map((e) => e.data.payload.text)
    .join('');

describe.skipIf(!redisTestsEnabled())('live feeds (SSE)', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ listen: true, env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());
  const runFeed = (runId: string) => `${t.baseUrl}/api/chat/runs/${runId}/events`;

  test('a run feed: lifecycle and deltas in order, then it ends after the terminal event', async () => {
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'count to twelve' });
    const feed = await readFeed(runFeed(body.runId));
    expect(feed.status).toBe(200);
    expect(feed.headers.get('content-type')).toContain('text/event-stream');
    expect(feed.headers.get('cache-control')).toBe('no-cache');
    expect(feed.headers.get('x-accel-buffering')).toBe('no');
    expect(feed.ended).toBe(true);
    const kinds = summary(feed.events);
    expect(kinds[0]).toBe('agent.run.requested');
    expect(kinds[1]).toBe('agent.run.started');
    expect(kinds.at(-1)).toBe('agent.run.completed');
    // Batched: fewer writes than pieces, and the deltas add up to the stored reply, in order.
    const deltas = feed.events.filter((e) => e.event === 'agent.run.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.length).toBeLessThan(WORDS.length);
    expect(deltas.map((e) => e.data.payload.index)).toEqual(deltas.map((_, i) => i));
    const completed = feed.events.at(-1)?.data;
    expect(replyOf(feed.events, 1)).toBe(completed.payload.content);
    expect(completed.payload.content).toBe(chunks.join(''));
    // The SSE data is the event as one JSON object, payload an object.
    expect(completed).toMatchObject({
      type: 'agent.run.completed',
      eventId: expect.stringMatching(/^evt_/),
      runId: body.runId,
      threadId: body.threadId,
      occurredAt: expect.any(String),
    });
    expect(completed.payload.usage.totalTokens).toBeGreaterThan(0);
    // Usage came through the stream (stream_options.include_usage).
    expect(llm.requests[0]?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('a client that leaves mid-run and resumes with Last-Event-ID sees the same sequence', async () => {
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'resume me' });
    const first = await readFeed(runFeed(body.runId), {
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.delta'),
    });
    expect(first.ended).toBe(false);
    const rest = await readFeed(runFeed(body.runId), { lastEventId: first.events.at(-1)?.id });
    const whole = await readFeed(runFeed(body.runId));
    const joined = [...first.events, ...rest.events];
    expect(joined.map((e) => e.id)).toEqual(whole.events.map((e) => e.id));
    expect(joined.map((e) => e.data.eventId)).toEqual(whole.events.map((e) => e.data.eventId));
    // From the terminal event's id: nothing, and the feed closes.
    const after = await readFeed(runFeed(body.runId), { lastEventId: whole.events.at(-1)?.id });
    expect(after).toMatchObject({ status: 200, ended: true, events: [] });
  });

  test("a retried attempt's deltas carry the higher attempt", async () => {
    llm.enqueue({ kind: 'status', status: 503 });
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'flaky stream' });
    const feed = await readFeed(runFeed(body.runId));
    const attempts = feed.events
      .filter((e) => e.event === 'agent.run.started')
      .map((e) => e.data.payload.attempt);
    expect(attempts).toEqual([1, 2]);
    const deltaAttempts = new Set(
      feed.events.filter((e) => e.event === 'agent.run.delta').map((e) => e.data.payload.attempt),
    );
    expect([...deltaAttempts]).toEqual([2]);
    expect(replyOf(feed.events, 2)).toBe(feed.events.at(-1)?.data.payload.content);
  });

  test('a finished run replays its whole history and closes at once', async () => {
    const { body } = await t.post({ content: 'already done' });
    await t.events.waitForTerminal(body.runId);
    const feed = await readFeed(runFeed(body.runId));
    expect(feed.ended).toBe(true);
    const [requested, started, ...deltas] = feed.events;
    const completed = deltas.pop();
    expect([requested?.event, started?.event, completed?.event]).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    // The echo streams as 'echo: ', 'already ', 'done': one to three deltas, as the batching
    // timer falls, all of the one attempt, indexed from 0, adding up to the stored reply.
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    expect(deltas.length).toBeLessThanOrEqual(3);
    expect(
      deltas.map((e) => ({
        event: e.event,
        attempt: e.data.payload.attempt,
        index: e.data.payload.index,
      })),
    ).toEqual(deltas.map((_, index) => ({ event: 'agent.run.delta', attempt: 1, index })));
    expect(deltas.map((e) => e.data.payload.text).join('')).toBe('echo: already done');
    expect(completed?.data.payload.content).toBe('echo: already done');
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body.reply.content).toBe('echo: already done');
  });

  test('unknown runs and threads are a 404 JSON error before any stream', async () => {
    for (const path of ['runs/run_nope/events', 'threads/nope/events']) {
      const response = await fetch(`${t.baseUrl}/api/chat/${path}`);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });

  test('a thread feed: the thread lifecycle events from the moment of connection, resumable', async () => {
    const threadId = `feed-thread-${Date.now()}`;
    const before = await t.post({ content: 'before connecting', threadId });
    await t.events.waitForTerminal(before.body.runId);
    const url = `${t.baseUrl}/api/chat/threads/${threadId}/events`;
    const watching = readFeed(url, {
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.completed'),
    });
    // Wait until the feed is subscribed (one more stream reader subscriber), then post.
    const subscribed = await waitForValue(
      () => t.deps.feeds.stats().subscribers,
      (subscribers) => subscribers > 0,
    );
    expect(subscribed).toBeGreaterThan(0);
    const other = await t.post({ content: 'another thread' });
    const during = await t.post({ content: 'while watching', threadId });
    const feed = await watching;
    expect(feed.events.map((e) => e.data.runId)).not.toContain(before.body.runId);
    expect(feed.events.map((e) => e.data.runId)).not.toContain(other.body.runId);
    expect(feed.events.map((e) => e.event)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.completed',
    ]);
    expect(feed.events.every((e) => e.data.runId === during.body.runId)).toBe(true);
    // Resume after the first event: exactly the two after it.
    const resumed = await readFeed(url, {
      lastEventId: feed.events[0]?.id,
      stopWhen: (events) => events.some((e) => e.event === 'agent.run.completed'),
    });
    expect(resumed.events.map((e) => e.id)).toEqual(feed.events.slice(1).map((e) => e.id));
  });

  test("an operator's retry reopens the run in the same feed: through the latest terminal event, resumable from the first", async () => {
    llm.enqueue({ kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'retry my feed' });
    await t.events.waitForTerminal(body.runId);
    // Failed: its failed event is the latest terminal one, so the feed ends there.
    const beforeRetry = await readFeed(runFeed(body.runId));
    expect(summary(beforeRetry.events)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.failed',
    ]);
    const failedId = beforeRetry.events.at(-1)?.id as string;
    const fromFailed = await readFeed(runFeed(body.runId), { lastEventId: failedId });
    expect(fromFailed).toMatchObject({ status: 200, ended: true, events: [] });

    // The retry streams slowly, so two watchers join while it runs: one from the start, one
    // resuming from the failed event.
    llm.setDefault(slowStream);
    expect(await waitForJobState(t.deps.queue, body.runId, 'failed')).toBe('failed');
    await (await t.deps.queue.getJob(body.runId))?.retry('failed');
    await t.events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.payload?.attempt === 2),
      'the retry started',
    );
    const [live, resumed] = await Promise.all([
      readFeed(runFeed(body.runId)),
      readFeed(runFeed(body.runId), { lastEventId: failedId }),
    ]);
    const kinds = summary(live.events);
    expect(live.ended).toBe(true);
    expect(kinds.slice(0, 4)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.failed',
      'agent.run.started',
    ]);
    expect(kinds.slice(4, -1).every((kind) => kind === 'delta:2')).toBe(true);
    expect(kinds.length).toBeGreaterThan(5);
    expect(kinds.at(-1)).toBe('agent.run.completed');
    expect(resumed.ended).toBe(true);
    expect(resumed.events.map((e) => e.id)).toEqual(live.events.slice(3).map((e) => e.id));

    // Afterwards: the replay serves everything through the completed event, and so does a
    // resume from the failed one; from the completed event, nothing.
    const replay = await readFeed(runFeed(body.runId));
    expect(replay.events.map((e) => e.id)).toEqual(live.events.map((e) => e.id));
    const later = await readFeed(runFeed(body.runId), { lastEventId: failedId });
    expect(later.events.map((e) => e.id)).toEqual(live.events.slice(3).map((e) => e.id));
    const fromCompleted = await readFeed(runFeed(body.runId), {
      lastEventId: live.events.at(-1)?.id,
    });
    expect(fromCompleted).toMatchObject({ status: 200, ended: true, events: [] });
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({ status: 'completed', attempts: 2 });
    expect(live.events.at(-1)?.data.payload.content).toBe(run.body.reply.content);
  });

  test('an idle feed answers with its headers and a comment at once, before any event', async () => {
    const firstChunk = async (url: string, lastEventId?: string) => {
      // Bounded: a feed that holds its headers back until the first event never resolves.
      const response = await fetch(url, {
        headers: lastEventId ? { 'last-event-id': lastEventId } : {},
        signal: AbortSignal.timeout(2000),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const { value } = await reader.read();
      await reader.cancel();
      return new TextDecoder().decode(value);
    };
    const threadId = `idle-thread-${Date.now()}`;
    const done = await t.post({ content: 'then nothing', threadId });
    await t.events.waitForTerminal(done.body.runId);
    expect(await firstChunk(`${t.baseUrl}/api/chat/threads/${threadId}/events`)).toBe(
      ': connected\n\n',
    );
    // A run feed resumed from the start of an attempt whose model has not answered yet (and
    // will not: a busy machine must not let the run end before the feed opens; it is cancelled).
    llm.enqueue({ kind: 'stall' });
    const { body } = await t.post({ content: 'think first' });
    const [, started] = await t.events
      .waitFor(
        (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.started'),
        'the run started',
      )
      .then(() => t.events.forRun(body.runId));
    // The run's own stream gets its copy in the same pipeline, not the same instant: a feed
    // resumed from an id it does not hold yet would start with a reset.
    const runStream = runStreamKey(t.deps.stream, body.runId);
    await waitForValue(
      () => t.deps.redis.xrange(runStream, started?.id as string, started?.id as string),
      (entries) => entries.length === 1,
    );
    expect(await firstChunk(runFeed(body.runId), started?.id)).toBe(': connected\n\n');
    const cancel = await t.call(`/api/chat/runs/${body.runId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    await t.events.waitForTerminal(body.runId);
  });

  test("a stream's live entry reaches every feed as one object, so its frame is made once", async () => {
    const probe = new Redis(t.config.redis.url);
    const key = runStreamKey(t.deps.stream, 'run_sharedframes');
    const got: Entry[][] = [[], [], []];
    const releases = await Promise.all(
      got.map((into) => t.deps.feeds.subscribe(key, '0-0', (entry) => into.push(entry))),
    );
    try {
      const fields = (i: number) => [
        'type',
        'agent.run.delta',
        'eventId',
        `evt_shared${i}`,
        'runId',
        'run_sharedframes',
        'threadId',
        'thr_sharedframes',
        'occurredAt',
        new Date().toISOString(),
        'payload',
        JSON.stringify({ attempt: 1, index: i, text: `piece ${i} ` }),
      ];
      await probe.xadd(key, '*', ...fields(0));
      await probe.xadd(key, '*', ...fields(1));
      const counts = await waitForValue(
        () => got.map((entries) => entries.length),
        (now) => now.every((n) => n === 2),
      );
      expect(counts).toEqual([2, 2, 2]);
      for (const at of [0, 1]) {
        const [first, ...others] = got.map((entries) => entries[at] as Entry);
        for (const other of others) {
          expect(other).toBe(first as Entry);
          expect(encodeEntry(other)).toBe(encodeEntry(first as Entry));
        }
        expect(new TextDecoder().decode(encodeEntry(first as Entry))).toBe(
          formatEntry(first as Entry),
        );
      }
    } finally {
      for (const release of releases) release();
      await probe.del(key);
      probe.disconnect();
    }
  });

  test('the newest matching entry is found however far back it is, across the growing pages', async () => {
    const probe = new Redis(t.config.redis.url);
    const key = (back: number) => runStreamKey(t.deps.stream, `run_lastmatching${back}`);
    const isMark = (fields: { type?: string }) => fields.type === 'mark';
    // A stream of 1 200 entries whose mark is `back` entries from the newest (1: the newest),
    // an older mark before it; 0: no mark at all.
    const cases = [0, 1, 2, 8, 9, 10, 40, 41, 169, 170, 500, 669, 700, 1200];
    try {
      expect(await t.deps.feeds.lastMatching(key(0), isMark)).toEqual({
        lastId: '0-0',
        found: undefined,
      });
      const pipeline = probe.pipeline();
      for (const back of cases) {
        for (let at = 1200; at >= 1; at--) {
          const type = back > 0 && (at === back || at === back + 1) ? 'mark' : 'filler';
          pipeline.xadd(key(back), `1-${1201 - at}`, 'type', type, 'at', String(at));
        }
      }
      await pipeline.exec();
      for (const back of cases) {
        const { lastId, found } = await t.deps.feeds.lastMatching(key(back), isMark);
        expect({ back, lastId, found: found?.id }).toEqual({
          back,
          lastId: '1-1200',
          found: back === 0 ? undefined : `1-${1201 - back}`,
        });
      }
    } finally {
      await probe.del(...cases.map(key));
      probe.disconnect();
    }
  });

  test('200 concurrent feeds share one reader, and leave nothing behind when closed', async () => {
    const probe = new Redis(t.config.redis.url);
    const clients = async () => ((await probe.client('LIST')) as string).trim().split('\n').length;
    const clientsBefore = await clients();
    llm.setDefault({ kind: 'stream', chunks, delayMs: 20 });
    const { body } = await t.post({ content: 'many watchers' });
    const feeds = await Promise.all(
      Array.from({ length: 200 }, () => readFeed(runFeed(body.runId))),
    );
    const ids = feeds[0]?.events.map((e) => e.id);
    for (const feed of feeds) {
      expect(feed.ended).toBe(true);
      expect(feed.events.map((e) => e.id)).toEqual(ids as string[]);
    }
    // Leaving mid-run releases the subscription too.
    const { body: second } = await t.post({ content: 'leave early' });
    await Promise.all(
      Array.from({ length: 50 }, () =>
        readFeed(runFeed(second.runId), { stopWhen: (events) => events.length >= 2 }),
      ),
    );
    await t.events.waitForTerminal(second.runId);
    // The last subscription is released just after its client goes: wait for it (bounded).
    const stats = await waitForValue(
      () => t.deps.feeds.stats(),
      (now) => now.subscribers === 0,
    );
    expect(stats).toEqual({ subscribers: 0, streams: 0 });
    expect(await clients()).toBe(clientsBefore);
    probe.disconnect();
  });
});
