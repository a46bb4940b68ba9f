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
import { EventReader, isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis, PrivateRedisCluster } from '../../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../../harness/processes';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import { RUN_QUEUE } from '../../jobs/catalog';
import { GRACE_MS, REAP_EVERY_MS, TTL_MS } from '../../jobs/liveness';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { type RunningRoles, startRoles } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { messageRolesOfRun } from '../support/rows';

/**
 * A dead worker process's runs are taken over by the liveness reaper (jobs/liveness.ts), with
 * the DEFAULT settings: no RUN_LOCK_MS or RUN_STALLED_CHECK_MS here. Left to the lock lapse, the
 * runs would wait about a minute and every wait below would time out; taken over, each run
 * starts again and ends exactly once. And the other side of it: a worker that is alive but whose
 * main thread is busy for longer than a liveness key lives keeps its run.
 */
setDefaultTimeout(60_000);

/** The killed worker's model calls: still in flight when it dies, however slow the box. */
const STUCK = { kind: 'reply', delayMs: 60_000, content: 'never delivered' } as const;
const LOG = 'a worker process is gone';

async function repliesOf(databaseUrl: string, runId: string) {
  const reader = await openSql(databaseUrl);
  try {
    return (await messageRolesOfRun(reader, runId)).filter((role) => role === 'assistant').length;
  } finally {
    await reader.close();
  }
}

describe.skipIf(!redisTestsEnabled())('a dead worker process is taken over', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string>;
  let events: EventReader;
  const children: ServerProcess[] = [];
  const spawn = async (role: 'api' | 'worker' | 'both', extra: Record<string, string> = {}) => {
    const child = await spawnServer(role, { ...env, ...extra });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'agent-run-takeover-'));
    database = await createTestDatabase(dir);
    env = { DATABASE_URL: database.url, REDIS_URL: redis.url, OPENAI_BASE_URL: llm.url };
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
  const replies = (runId: string) => repliesOf(database.url, runId);
  const post = async (baseUrl: string, count: number) => {
    const runIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const { status, body } = await postMessage(baseUrl, { content: `in flight ${i}` });
      expect(status).toBe(202);
      runIds.push(body.runId);
    }
    return runIds;
  };
  const startedAll = async (runIds: string[], times: number) => {
    await events.waitFor(
      (all) =>
        runIds.every(
          (id) =>
            all.filter((e) => e.runId === id && e.type === 'agent.run.started').length >= times,
        ),
      `every run to have started ${times} time(s)`,
    );
    await llm.waitForRequests(runIds.length);
  };
  /** Each run: started twice (the dead attempt counts), then completed exactly once. */
  const expectTakenOver = async (runIds: string[]) => {
    for (const runId of runIds) await events.waitForTerminal(runId);
    for (const runId of runIds) {
      const runEvents = events.distinctForRun(runId);
      expect(runEvents.map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.started',
        'agent.run.completed',
      ]);
      expect(runEvents.at(-1)?.payload).toMatchObject({ attempts: 2 });
      expect(events.forRun(runId).filter((e) => isTerminal(e.type))).toHaveLength(1);
      expect(await replies(runId)).toBe(1);
    }
  };

  test('a worker SIGKILLed with runs in flight: another worker runs them, each ends once', async () => {
    useStream(`takeover-${Date.now()}`);
    for (let i = 0; i < 4; i++) llm.enqueue(STUCK);
    const api = await spawn('api');
    const doomed = await spawn('worker');
    const runIds = await post(api.baseUrl, 4);
    await startedAll(runIds, 1);
    const heir = await spawn('worker');
    expect(await doomed.kill('SIGKILL')).not.toBe(0);

    await expectTakenOver(runIds);
    expect(heir.output.join('')).toContain(LOG);
  });

  test('both roles in one process, SIGKILLed and started again: it takes its runs back', async () => {
    useStream(`restart-${Date.now()}`);
    for (let i = 0; i < 3; i++) llm.enqueue(STUCK);
    const first = await spawn('both');
    const runIds = await post(first.baseUrl, 3);
    await startedAll(runIds, 1);
    expect(await first.kill('SIGKILL')).not.toBe(0);

    const again = await spawn('both');
    await expectTakenOver(runIds);
    expect(again.output.join('')).toContain(LOG);
  });

  test('a worker whose main thread is busy past a liveness key’s life keeps its run', async () => {
    useStream(`busy-${Date.now()}`);
    // The run's model call is still open when the hold below begins (the judge takes seconds to
    // start); the fake model shares this thread, so it answers once the hold is over.
    llm.enqueue({ kind: 'reply', delayMs: 15_000 });
    const api = await spawn('api');
    // The busy worker runs in this process, so the test can hold its main thread; its
    // heartbeat thread goes on.
    const config = loadConfig({ ...env, ADMIN_PASSWORD: 'takeover-test' });
    let busy: RunningRoles | undefined = await startRoles(config, {
      roles: ['worker'],
      overrides: { logger: createLogger('silent') },
    });
    try {
      const [runId] = await post(api.baseUrl, 1);
      await startedAll([runId as string], 1);
      const judge = await spawn('worker');
      // The judge's reaper judges from GRACE_MS after it started. Held through that and well
      // past a key's TTL: a heartbeat on this thread would have lapsed, and the judge released
      // the run's lock and started it again.
      const holdUntil = Date.now() + GRACE_MS + TTL_MS + 3 * REAP_EVERY_MS;
      while (Date.now() < holdUntil) {
        // busy: no timer, no I/O, no lock renewal on this thread
      }

      const runEvents = await events.waitForTerminal(runId as string);
      expect(runEvents.map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.completed',
      ]);
      expect(runEvents.at(-1)?.payload).toMatchObject({ attempts: 1 });
      expect(await replies(runId as string)).toBe(1);
      // (It may release the locks of the earlier tests' killed workers, never this run's.)
      expect(judge.output.join('')).not.toContain(runId as string);
      await busy.stop();
      busy = undefined;
    } finally {
      await busy?.stop();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('a dead worker process on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster;
  let llm: FakeLlm;
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const children: ServerProcess[] = [];

  beforeAll(async () => {
    cluster = await PrivateRedisCluster.start(3);
    llm = await startFakeLlm({ quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'agent-run-takeover-cluster-'));
    database = await createTestDatabase(dir);
  });
  afterAll(async () => {
    for (const child of children.splice(0)) await child.kill('SIGKILL');
    await llm.stop();
    await cluster.stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('its runs are taken over by another process; every key in one slot', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: `redis://${cluster.nodes.split(',')[0]}`,
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_STREAM_KEY: `takeover-${Date.now()}`,
      OPENAI_BASE_URL: llm.url,
    };
    const { redis } = loadConfig(env);
    const events = new EventReader(redis, redis.streamKey);
    try {
      for (let i = 0; i < 2; i++) llm.enqueue(STUCK);
      const spawn = async () => {
        const child = await spawnServer('both', env);
        children.push(child);
        return child;
      };
      const doomed = await spawn();
      const runIds: string[] = [];
      for (let i = 0; i < 2; i++) {
        runIds.push(
          (await postMessage(doomed.baseUrl, { content: `on a cluster ${i}` })).body.runId,
        );
      }
      await events.waitFor(
        (all) =>
          runIds.every((id) => all.some((e) => e.runId === id && e.type === 'agent.run.started')),
        'both runs to start',
      );
      await llm.waitForRequests(2);
      const heir = await spawn();
      expect(await doomed.kill('SIGKILL')).not.toBe(0);

      for (const runId of runIds) await events.waitForTerminal(runId);
      for (const runId of runIds) {
        expect(events.distinctForRun(runId).map((e) => e.type)).toEqual([
          'agent.run.requested',
          'agent.run.started',
          'agent.run.started',
          'agent.run.completed',
        ]);
      }
      // The reaper's script ran on the Cluster (a key in another slot would have failed it).
      const output = heir.output.join('');
      expect(output).toContain(LOG);
      expect(output).not.toContain('CROSSSLOT');
    } finally {
      await events.close();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('an attempt whose job lock is lost', () => {
  let llm: FakeLlm;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
  });
  afterAll(async () => {
    await llm.stop();
  });

  /**
   * One run whose first model call never answers; `lose` takes its job's lock away as the
   * reaper does to a process taken for dead (or a lapse to a stuck one), and sees to it that the
   * job is handed out again. The stale attempt must let go of its model call, so it no longer
   * runs beside the next one, and the run must end once, by the next attempt.
   */
  const loseTheLock = async (
    env: Record<string, string>,
    lose: (t: TestApp, lockKey: string, runId: string) => Promise<void>,
  ) => {
    llm.reset();
    const t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, ...env } });
    try {
      llm.enqueue(STUCK);
      const { body } = await t.post({ content: 'lose the lock' });
      const [first] = await llm.waitForRequests(1);
      const queueKey = `${t.config.redis.queuePrefix}:${RUN_QUEUE}`;
      await lose(t, `${queueKey}:${body.runId}:lock`, body.runId);

      const closedAt = await waitForValue(
        () => first?.closedAt,
        (at) => at !== undefined,
        20_000,
      );
      expect(closedAt).toBeDefined();
      const runEvents = await t.events.waitForTerminal(body.runId);
      expect(t.events.distinctForRun(body.runId).map((e) => e.type)).toEqual([
        'agent.run.requested',
        'agent.run.started',
        'agent.run.started',
        'agent.run.completed',
      ]);
      expect(runEvents.at(-1)?.payload).toMatchObject({
        content: 'echo: lose the lock',
        attempts: 2,
      });
      expect(await repliesOf(t.config.databaseUrl, body.runId)).toBe(1);
    } finally {
      await t.close();
    }
  };

  test('its lock renewal fails: it stops and writes nothing; the next attempt runs the run once', async () => {
    // Renewed every second; the stalled check left at its default, run by hand below.
    await loseTheLock({ RUN_LOCK_MS: '2000' }, async (t, lockKey, runId) => {
      await t.deps.redis.del(lockKey);
      const first = llm.requests[0];
      await waitForValue(
        () => first?.closedAt,
        (at) => at !== undefined,
        20_000,
      );
      // Stopped, the job left where it was: BullMQ's stalled check hands it out again.
      const queueKey = lockKey.slice(0, lockKey.length - `${runId}:lock`.length - 1);
      await t.deps.redis.sadd(`${queueKey}:stalled`, runId);
      await t.deps.redis.del(`${queueKey}:stalled-check`);
      await t.worker?.startStalledCheckTimer();
    });
  });

  test('the same worker is handed its job again: the older attempt stops', async () => {
    // The lock is not renewed again within the test; a stalled check every half second.
    await loseTheLock({ RUN_STALLED_CHECK_MS: '500' }, async (t, lockKey) => {
      await t.deps.redis.del(lockKey);
    });
  });
});
