import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EventReader, isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../../harness/processes';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import { addStreamRequests } from '../support/producer';
import { redisTestsEnabled } from '../support/redis';
import { messageRolesOfRun } from '../support/rows';

/**
 * Real processes, really killed: the API and workers run as `bun src/main.ts` children over a
 * private redis-server and one SQLite file; the test watches the stream and the database.
 */
// Real processes take seconds to start, die and recover: more than bun test's default 5 s a
// test, which `bun run test` raises but a plain `bun test <file>` does not.
setDefaultTimeout(30_000);

describe.skipIf(!redisTestsEnabled())('crashes and shutdowns lose nothing', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let dir: string;
  let env: Record<string, string>;
  let events: EventReader;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const children: ServerProcess[] = [];
  const spawn = async (
    role: 'api' | 'worker' | 'both',
    extra: Record<string, string> = {},
    readiness?: 'ready' | 'listening',
  ) => {
    const child = await spawnServer(role, { ...env, ...extra }, { readiness });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'agent-run-crash-'));
    database = await createTestDatabase(dir);
    env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      OPENAI_BASE_URL: llm.url,
      ADMIN_PASSWORD: 'crash-test',
      // Fast recovery for the test: a dead worker's lock lapses in 1.5 s, checked every 0.5 s.
      RUN_LOCK_MS: '1500',
      RUN_STALLED_CHECK_MS: '500',
      RUN_BACKOFF_MS: '50',
    };
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await child.kill('SIGKILL');
    await events?.close();
    llm.reset();
  });
  afterAll(async () => {
    await llm.stop();
    await redis.stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const useStream = (key: string) => {
    env.REDIS_STREAM_KEY = key;
    events = new EventReader(redis.url, key);
  };
  const terminalCounts = (runIds: string[]) =>
    runIds.map((id) => events.forRun(id).filter((e) => isTerminal(e.type)).length);
  const replies = async (runId: string) => {
    const reader = await openSql(env.DATABASE_URL as string);
    try {
      return (await messageRolesOfRun(reader, runId)).filter((role) => role === 'assistant').length;
    } finally {
      await reader.close();
    }
  };

  test('a worker SIGKILLed mid-run: the run is recovered and completes once', async () => {
    useStream(`crash-worker-${Date.now()}`);
    llm.enqueue({ kind: 'reply', delayMs: 60_000, content: 'never delivered' });
    const api = await spawn('api');
    const doomed = await spawn('worker');
    const { body } = await postMessage(api.baseUrl, { content: 'survive a crash' });
    await events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.started'),
      'the first attempt to start',
    );
    await llm.waitForRequests(1);
    expect(await doomed.kill('SIGKILL')).not.toBe(0);

    await spawn('worker');
    await events.waitForTerminal(body.runId);
    // The first attempt's `started` may come twice (killed before its outbox row was marked
    // sent, the next attempt sends it again, first): once its duplicate is dropped, in order.
    const runEvents = events.distinctForRun(body.runId);
    expect(runEvents.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.started',
      'agent.run.completed',
    ]);
    // The crashed attempt counts as spent.
    expect(runEvents.at(-1)?.payload).toMatchObject({
      content: 'echo: survive a crash',
      attempts: 2,
    });
    expect(await replies(body.runId)).toBe(1);
  });

  test('the API killed before it could publish: the relay delivers after restart', async () => {
    useStream(`crash-api-${Date.now()}`);
    await redis.down();
    const api = await spawn('api', {}, 'listening'); // not ready: Redis is down
    const accepted = [];
    for (let i = 0; i < 3; i++) {
      const answer = await postMessage(api.baseUrl, { content: `while Redis is away ${i}` });
      expect(answer.status).toBe(202);
      accepted.push(answer.body.runId as string);
    }
    await api.kill('SIGKILL');
    await redis.up();

    await spawn('api'); // its relay finds the undelivered rows
    await spawn('worker');
    for (const runId of accepted) await events.waitForTerminal(runId);
    expect(terminalCounts(accepted)).toEqual([1, 1, 1]);
    for (const runId of accepted) {
      expect(events.forRun(runId).map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.completed',
      ]);
    }
  });

  test('SIGTERM under load: in-flight runs finish, the rest wait; none lost, none twice', async () => {
    useStream(`shutdown-${Date.now()}`);
    llm.setDefault({ kind: 'reply', delayMs: 700 });
    const server = await spawn('both', { WORKER_CONCURRENCY: '3' });
    const runIds: string[] = [];
    for (let i = 0; i < 9; i++) {
      runIds.push((await postMessage(server.baseUrl, { content: `load ${i}` })).body.runId);
    }
    await events.waitFor(
      (all) => all.filter((e) => e.type === 'agent.run.started').length >= 3,
      'three runs in flight',
    );
    const inFlight = events.entries
      .filter((e) => e.type === 'agent.run.started')
      .map((e) => e.runId);
    expect(await server.kill('SIGTERM')).toBe(0);
    // Graceful: the runs that were in flight finished before the process left (it is gone
    // now, so their completed events must already be on the stream).
    await events.waitFor(
      (all) =>
        inFlight.every((id) => all.some((e) => e.runId === id && e.type === 'agent.run.completed')),
      'the in-flight runs to have completed before exit',
      5000,
    );

    await spawn('both', { WORKER_CONCURRENCY: '3' });
    for (const runId of runIds) await events.waitForTerminal(runId);
    expect(terminalCounts(runIds)).toEqual(runIds.map(() => 1));
    expect(await Promise.all(runIds.map(replies))).toEqual(runIds.map(() => 1));
  });

  test('two worker processes share 200 stream requests; none is served twice', async () => {
    useStream(`shared-${Date.now()}`);
    // info: each served request is a log line, which is how we tell who served it.
    const first = await spawn('worker', { REDIS_CONSUMER_NAME: 'host-a', LOG_LEVEL: 'info' });
    const second = await spawn('worker', { REDIS_CONSUMER_NAME: 'host-b', LOG_LEVEL: 'info' });
    const producer = new Redis(redis.url);
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `req-${i}`);
      await addStreamRequests(producer, env.REDIS_STREAM_KEY as string, ids);
      const announced = () =>
        events.entries.filter((e) => e.type === 'agent.run.requested' && e.payload.requestId);
      await events.waitFor(() => announced().length >= 200, 'all 200 requests to be announced');
      expect(new Set(announced().map((e) => e.payload.requestId)).size).toBe(200);
      expect(announced()).toHaveLength(200);
      const served = (child: ServerProcess) =>
        child.output
          .join('')
          .split('\n')
          .filter((l) => l.includes('stream request accepted')).length;
      // The log lines come through a pipe, a moment after the events: wait for them (bounded).
      const servedInAll = await waitForValue(
        () => served(first) + served(second),
        (total) => total >= 200,
        5000,
      );
      expect(servedInAll).toBe(200);
      expect(served(first)).toBeGreaterThan(0);
      expect(served(second)).toBeGreaterThan(0);
    } finally {
      producer.disconnect();
    }
  });
});
