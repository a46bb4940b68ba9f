import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import type { Store } from '../../db/store';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { waitForValue } from '../../harness/wait';
import { isTerminalEvent } from '../../src/events/event';
import { runStreamKey } from '../../src/events/stream-writer';
import { waitForRunView } from '../../src/runs/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

// A streamed answer of about four seconds with no silence near LLM_TIMEOUT_MS: a slow run whose
// deltas flow past the waiters (none of them ends a wait).
const slowStream = {
  kind: 'stream' as const,
  chunks: Array.from({ length: 20 }, (_, i) => `word${i} `),
  delayMs: 200,
};

describe.skipIf(!redisTestsEnabled())('GET a run with ?wait=', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    // A redis-server of its own, so that CLIENT LIST counts this app's connections only: other
    // test runs on this machine may share the default Redis.
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    // A stalled model call ends after 3 s and is retried (then answered by the echo), so the
    // stalled runs of these tests finish, and the app closes without waiting a minute.
    t = await startTestApp({
      redisUrl: redis.url,
      env: { OPENAI_BASE_URL: llm.url, LLM_TIMEOUT_MS: '3000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    await redis.stop();
  });
  beforeEach(() => llm.reset());

  const runPath = (runId: string) => `/api/chat/runs/${runId}`;
  const noWaiters = () =>
    waitForValue(
      () => t.deps.feeds.stats(),
      (stats) => stats.subscribers === 0,
    );

  test('held until the run completes, then the completed run with its reply', async () => {
    llm.enqueue({ kind: 'reply', delayMs: 800 });
    const { body } = await t.post({ content: 'take your time' });
    // The model has the call: the run is running, and answers 800 ms from now.
    await llm.waitForRequests(1);
    // A wait that missed the completed event would hold for its 60 s: past this test's 30 s
    // timeout, so it fails rather than answering late.
    const waiting = t.get(`${runPath(body.runId)}?wait=60`);
    // It waits on the run's stream (a finished run would have been answered without one).
    const watched = await waitForValue(
      () => t.deps.feeds.stats(),
      (stats) => stats.subscribers === 1,
    );
    expect(watched).toEqual({ subscribers: 1, streams: 1 });
    const waited = await waiting;
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({
      id: body.runId,
      status: 'completed',
      reply: { role: 'assistant', content: 'echo: take your time' },
    });
    // The same view as without wait.
    expect(waited.body).toEqual((await t.get(runPath(body.runId))).body);
    expect(await noWaiters()).toEqual({ subscribers: 0, streams: 0 });
  });

  test('when the time is up first: the run as it is then (still running)', async () => {
    llm.enqueue({ kind: 'stall' });
    const { body } = await t.post({ content: 'stall, please' });
    await llm.waitForRequests(1);
    const waited = await t.get(`${runPath(body.runId)}?wait=1`);
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ id: body.runId, status: 'running', reply: null });
    expect(await noWaiters()).toEqual({ subscribers: 0, streams: 0 });
    // The stalled call times out and the retry completes it: nothing is left running.
    await t.events.waitForTerminal(body.runId);
  });

  test('a finished run is answered at once', async () => {
    const { body } = await t.post({ content: 'quick one' });
    await t.events.waitForTerminal(body.runId);
    // A wait that did not see the run finished would hold the whole minute: past the test's
    // timeout.
    const waited = await t.get(`${runPath(body.runId)}?wait=60`);
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({
      status: 'completed',
      reply: { content: 'echo: quick one' },
    });
    expect(waited.body).toEqual((await t.get(runPath(body.runId))).body);
  });

  test('an unknown run is a 404 at once, waiting or not', async () => {
    const missing = await t.get(`${runPath('run_doesnotexist')}?wait=30`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect(t.deps.feeds.stats()).toEqual({ subscribers: 0, streams: 0 });
  });

  test('a terminal event written between the read and the subscription is not missed', async () => {
    llm.enqueue({ kind: 'reply', delayMs: 300 });
    const { body } = await t.post({ content: 'race the wait' });
    const key = runStreamKey(t.deps.stream, body.runId);
    let firstRead: string | undefined;
    // The wait's first read of the run sees it unfinished, and returns only once the terminal
    // event is on the run's stream: exactly the window between the read and the subscription.
    const db: Store = {
      ...t.deps.db,
      async getRunWithReply(runId) {
        const found = await t.deps.db.getRunWithReply(runId);
        if (firstRead === undefined) {
          firstRead = found?.run.status;
          await waitForValue(
            async () => (await t.deps.feeds.entry(key, await t.deps.feeds.lastIdOf(key)))?.fields,
            (fields) => isTerminalEvent(fields?.type),
          );
        }
        return found;
      },
    };
    // A missed event would hold the wait for its 60 s: past the test's timeout.
    const view = await waitForRunView(
      { db, feeds: t.deps.feeds, stream: t.deps.stream },
      body.runId,
      {
        seconds: 60,
      },
    );
    expect(firstRead).toBeOneOf(['queued', 'running']);
    expect(view).toMatchObject({ status: 'completed', reply: { content: 'echo: race the wait' } });
    expect(await noWaiters()).toEqual({ subscribers: 0, streams: 0 });
  });

  test('a client that leaves releases its wait', async () => {
    llm.enqueue({ kind: 'stall' });
    const { body } = await t.post({ content: 'I will not stay' });
    await llm.waitForRequests(1);
    const client = new AbortController();
    const leaving = t.request(`${runPath(body.runId)}?wait=30`, { signal: client.signal });
    await waitForValue(
      () => t.deps.feeds.stats().subscribers,
      (subscribers) => subscribers === 1,
    );
    client.abort();
    await leaving.catch(() => {});
    // Released at once, long before the 30 s and before the stalled call times out (3 s).
    expect(await noWaiters()).toEqual({ subscribers: 0, streams: 0 });
    const run = await t.get(runPath(body.runId));
    expect(run.body.status).toBe('running');
    await t.events.waitForTerminal(body.runId);
  });

  test('200 waiters on one slow run share one stream reader, and leave nothing behind', async () => {
    const probe = new Redis(t.config.redis.url);
    const clients = async () => ((await probe.client('LIST')) as string).trim().split('\n').length;
    const clientsBefore = await clients();
    llm.setDefault(slowStream);
    const { body } = await t.post({ content: 'many waiters' });
    // Waiters that missed the run's end (about 4 s) would hold for 60 s: past the test's timeout.
    const waiters = Array.from({ length: 200 }, () => t.get(`${runPath(body.runId)}?wait=60`));
    // A subscriber is counted a moment before its stream is (the reader first takes the
    // stream's position): wait for both to settle.
    const during = await waitForValue(
      () => t.deps.feeds.stats(),
      (stats) => stats.subscribers === 200 && stats.streams > 0,
    );
    expect(during).toEqual({ subscribers: 200, streams: 1 });
    const answers = await Promise.all(waiters);
    const content = slowStream.chunks.join('');
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ status: 'completed', reply: { content } });
    }
    expect(await noWaiters()).toEqual({ subscribers: 0, streams: 0 });
    expect(await clients()).toBe(clientsBefore);
    probe.disconnect();
  });

  test.each(['0', '61', '-1', '1.5', 'abc', '', '1e1', ' 5'])(
    'wait=%p is a 400 invalid_request and changes nothing',
    async (wait) => {
      const { body } = await t.post({ content: `bad wait ${wait}` });
      await t.events.waitForTerminal(body.runId);
      const before = await t.get(runPath(body.runId));
      const bad = await t.get(`${runPath(body.runId)}?wait=${encodeURIComponent(wait)}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('invalid_request');
      expect(t.deps.feeds.stats()).toEqual({ subscribers: 0, streams: 0 });
      expect(await t.get(runPath(body.runId))).toEqual(before);
    },
  );

  test('Swagger documents wait, with an example', async () => {
    const { body: doc } = await t.get('/swagger/json');
    const get = doc.paths['/api/chat/runs/{runId}'].get;
    const wait = get.parameters.find((p: { name: string }) => p.name === 'wait');
    expect(wait).toMatchObject({ in: 'query', required: false, example: '30' });
    expect(wait.schema.pattern).toBeDefined();
    expect(get.description).toContain('?wait=30');
    expect(Object.keys(get.responses).sort()).toEqual(['200', '400', '401', '404', '503']);
  });
});

// This test stops Redis, so it runs its own redis-server: never the shared one.
describe.skipIf(!redisTestsEnabled())('GET a run with ?wait= while Redis is down', () => {
  let redis: PrivateRedis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, worker: false });
  });
  afterAll(async () => {
    await redis.up().catch(() => {}); // let close() reach it
    await t.close();
    await redis.stop();
  });

  test('the wait still ends when its time is up, with the run as the database has it', async () => {
    const { body } = await t.post({ content: 'nobody will run me' });
    await redis.down();
    while (t.deps.redis.status === 'ready') await new Promise((r) => t.deps.redis.once('close', r));
    const waited = await t.get(`/api/chat/runs/${body.runId}?wait=1`);
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ id: body.runId, status: 'queued' });
    await redis.up();
    // Once Redis is back, the wait that never got to subscribe leaves nothing behind.
    const stats = await waitForValue(
      () => t.deps.feeds.stats(),
      (now) => now.subscribers === 0,
    );
    expect(stats).toEqual({ subscribers: 0, streams: 0 });
  });
});

describe.skipIf(!redisTestsEnabled())("GET a thread's runs", () => {
  let llm: FakeLlm;
  let t: TestApp;
  let threadId: string;
  let runIds: string[];
  let foreignRunId: string;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
    threadId = `thread-runs-${Date.now()}`;
    runIds = [];
    for (let i = 1; i <= 5; i++) {
      const { body } = await t.post({ content: `message ${i}`, threadId });
      runIds.push(body.runId);
    }
    const other = await t.post({ content: 'another thread' });
    foreignRunId = other.body.runId;
    for (const runId of [...runIds, foreignRunId]) await t.events.waitForTerminal(runId);
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  const runsPath = (query = '') => `/api/chat/threads/${threadId}/runs${query}`;
  const idsOf = (page: { runs: { id: string }[] }) => page.runs.map((run) => run.id);
  const newestFirst = () => [...runIds].reverse();

  test('newest first, each run as GET run shows it, reply included', async () => {
    const { status, body } = await t.get(runsPath());
    expect(status).toBe(200);
    expect(body).toMatchObject({ threadId, hasMore: false, nextBefore: null });
    expect(idsOf(body)).toEqual(newestFirst());
    expect(body.runs.map((run: { reply: { content: string } }) => run.reply.content)).toEqual(
      [5, 4, 3, 2, 1].map((i) => `echo: message ${i}`),
    );
    for (const run of body.runs)
      expect(run).toEqual((await t.get(`/api/chat/runs/${run.id}`)).body);
  });

  test('pages back with before=nextBefore while hasMore', async () => {
    const first = await t.get(runsPath('?limit=2'));
    expect(idsOf(first.body)).toEqual(newestFirst().slice(0, 2));
    expect(first.body).toMatchObject({ hasMore: true, nextBefore: runIds[3] });
    const second = await t.get(runsPath(`?limit=2&before=${first.body.nextBefore}`));
    expect(idsOf(second.body)).toEqual(newestFirst().slice(2, 4));
    expect(second.body).toMatchObject({ hasMore: true, nextBefore: runIds[1] });
    const third = await t.get(runsPath(`?limit=2&before=${second.body.nextBefore}`));
    expect(idsOf(third.body)).toEqual(newestFirst().slice(4));
    expect(third.body).toMatchObject({ hasMore: false, nextBefore: null });
    // Exactly filled pages: no more is no more.
    const exact = await t.get(runsPath(`?limit=4&before=${runIds[4]}`));
    expect(idsOf(exact.body)).toEqual(newestFirst().slice(1));
    expect(exact.body).toMatchObject({ hasMore: false, nextBefore: null });
  });

  test('limit: 1 and 200 are fine; 0, 201, abc and 1.5 are a 400 invalid_request', async () => {
    expect(idsOf((await t.get(runsPath('?limit=1'))).body)).toEqual(newestFirst().slice(0, 1));
    expect(idsOf((await t.get(runsPath('?limit=200'))).body)).toEqual(newestFirst());
    for (const limit of ['0', '201', 'abc', '1.5']) {
      const bad = await t.get(runsPath(`?limit=${limit}`));
      expect({ limit, status: bad.status, code: bad.body.error?.code }).toEqual({
        limit,
        status: 400,
        code: 'invalid_request',
      });
    }
  });

  test('a before that is not a run of this thread is a 400 invalid_cursor', async () => {
    for (const before of ['run_unknown', foreignRunId]) {
      const bad = await t.get(runsPath(`?before=${before}`));
      expect({ before, status: bad.status, code: bad.body.error?.code }).toEqual({
        before,
        status: 400,
        code: 'invalid_cursor',
      });
    }
  });

  test('an unknown thread is a 404 not_found', async () => {
    const missing = await t.get('/api/chat/threads/nope/runs');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  test('Swagger documents the route: summary, description, paging, examples, every error', async () => {
    const { body: doc } = await t.get('/swagger/json');
    const get = doc.paths['/api/chat/threads/{threadId}/runs'].get;
    expect(get.tags).toEqual(['runs']);
    expect(get.summary).toBeString();
    expect(get.description).toContain('before=nextBefore');
    expect(get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'before',
      'limit',
      'threadId',
    ]);
    expect(Object.keys(get.responses).sort()).toEqual(['200', '400', '401', '404', '503']);
    expect(JSON.stringify(get.responses['200'])).toContain('"nextBefore":"run_');
    expect(get.responses['400'].description).toContain('invalid_cursor');
  });
});
