/**
 * The floor: what the parts that every message and every run need cost on their own, in CPU
 * time (not rates, which a shared box bends), each measured in the process that does it. The
 * parts: an HTTP request whose JSON body is parsed and validated (the server's own route,
 * answered 400 for a blank content, so no store work), the SQLite store's commit of an accepted
 * message (store-cost.ts), one Redis round trip carrying an XADD and a BullMQ job, a plain BullMQ
 * no-op job, one streamed call of the `openai` SDK to the fake model, and the run's own commits
 * (run-cost.ts). `bun run bench` measures it in the same run as the server and divides the
 * server's CPU per message (P1) and per run (P2) by it; `bun run bench:floor` prints it alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { spawn } from 'bun';
import { Redis } from 'ioredis';
import { freePort } from '../harness/ports';
import { PrivateRedis } from '../harness/private-redis';
import { spawnServer } from '../harness/processes';
import { waitForValue } from '../harness/wait';
import { loadConfig } from '../src/config';
import { createLlm } from '../src/llm/openai';
import { cannon, cpuSeconds, processCeiling } from './load';
import { runCommitCost } from './run-cost';
import { storeCost } from './store-cost';

/** CPU µs this process has spent since `before` (a `process.cpuUsage()`). */
const cpuUsSince = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before);
  return used.user + used.system;
};

export interface Floor {
  /** Server CPU for a request parsed, validated and answered (a 400: no store work). */
  httpUs: number;
  /** The store's CPU to commit an accepted message, its outbox row marked delivered. */
  storeUs: number;
  /** Client CPU for one round trip carrying an XADD and a BullMQ job. */
  redisUs: number;
  /** Client CPU a plain BullMQ no-op job costs its worker. */
  jobUs: number;
  /** Client CPU of one streamed `openai` SDK call. */
  sdkUs: number;
  /** The store's CPU for a run's claim and end, their rows marked delivered. */
  runCommitsUs: number;
  /** P1's floor: the HTTP request + the commit + the round trip. */
  p1: number;
  /** P2's floor: P1's + the job + the SDK call + the run's commits. */
  p2: number;
}

/** Its parts as table rows, for the bench's table or this command's. */
export const floorRows = (floor: Floor): [string, number][] => [
  ['floor: HTTP request, JSON parsed and validated (server CPU)', floor.httpUs],
  ['floor: the store commits an accepted message (server ids)', floor.storeUs],
  ['floor: one Redis round trip carrying an XADD and a BullMQ job (client CPU)', floor.redisUs],
  ['floor: a BullMQ no-op job (worker CPU)', floor.jobUs],
  ['floor: one streamed openai SDK call (client CPU)', floor.sdkUs],
  ["floor: a run's claim and end, committed (store CPU)", floor.runCommitsUs],
  ['P1 floor: HTTP request + commit + round trip', floor.p1],
  ["P2 floor: P1's + job + SDK call + the run's commits", floor.p2],
];

/**
 * Measures the floor against the Redis at `redisUrl` (its keys carry their own names and are
 * removed). `dir` takes the databases.
 */
export async function measureFloor(opts: {
  redisUrl: string;
  dir: string;
  quick: boolean;
  progress?: (line: string) => void;
}): Promise<Floor> {
  const progress = opts.progress ?? (() => {});
  const n = opts.quick
    ? { seconds: 1, jobs: 5000, store: 5000, sdk: 1000 }
    : { seconds: 3, jobs: 20_000, store: 20_000, sdk: 3000 };

  progress('floor: an XADD and a BullMQ job in one round trip, then a no-op job');
  const redisUs = await roundTripCost(opts.redisUrl, n.jobs);
  const jobUs = await noopJobCost(opts.redisUrl, n.jobs);

  progress('floor: the server answers a request it validates (a blank content: 400)');
  const server = await spawnServer('api', {
    DATABASE_URL: `file:${join(opts.dir, `floor-${Date.now()}.db`)}`,
    REDIS_URL: opts.redisUrl,
    REDIS_STREAM_KEY: `floor_events_${Date.now()}`,
    ADMIN_PASSWORD: 'floor',
    LOG_LEVEL: 'warn',
  });
  let httpUs: number;
  try {
    const body = () => JSON.stringify({ content: '   ' });
    const url = `${server.baseUrl}/api/chat/messages`;
    // Warm-up: the first requests compile the route's code.
    await cannon({ url, connections: 50, amount: 2000, method: 'POST', body });
    const before = cpuSeconds(server);
    const posts = await cannon({
      url,
      connections: 50,
      durationS: n.seconds,
      method: 'POST',
      body,
    });
    httpUs = ((cpuSeconds(server) - before) * 1e6) / posts.total;
  } finally {
    await server.kill('SIGKILL');
  }

  progress("floor: the store's commits of a message, and of a run's claim and end");
  // The store runs in this process (bun:sqlite): its CPU time, as the server's is counted.
  const storeUs = (await storeCost('server', n.store)).cpuUsPerMessage;
  const runCommitsUs = (await runCommitCost(n.store)).cpuUsPerRun;

  progress('floor: streamed openai SDK calls to a fake model in its own process');
  const sdkUs = await sdkCallCost(n.sdk);

  const p1 = httpUs + storeUs + redisUs;
  return {
    httpUs,
    storeUs,
    redisUs,
    jobUs,
    sdkUs,
    runCommitsUs,
    p1,
    p2: p1 + jobUs + sdkUs + runCommitsUs,
  };
}

/**
 * Client CPU of an XADD and a `queue.add` sent together: what one round trip carrying both costs
 * the client (BullMQ keeps its own connection, so here they are two writes at once).
 */
async function roundTripCost(redisUrl: string, count: number) {
  const url = new URL(redisUrl);
  const queue = new Queue(`floor-${Date.now()}`, {
    connection: { host: url.hostname, port: Number(url.port || 6379) },
    prefix: 'bench',
  });
  const client = new Redis(redisUrl);
  const stream = `floor-stream-${Date.now()}`;
  const one = (i: number) =>
    Promise.all([
      client.xadd(stream, '*', 'type', 'agent.run.requested', 'runId', `run_${i}`),
      queue.add('noop', { runId: `run_${i}` }, { jobId: `job-${i}` }),
    ]);
  try {
    for (let i = 0; i < 500; i++) await one(-i - 1); // warm-up
    const before = process.cpuUsage();
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < count) await one(next++);
      }),
    );
    return cpuUsSince(before) / count;
  } finally {
    await client.del(stream);
    client.disconnect();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** Client CPU a no-op job costs a plain BullMQ worker at concurrency 50. */
async function noopJobCost(redisUrl: string, count: number) {
  const url = new URL(redisUrl);
  // processCeiling's worker reads the `bench` prefix.
  const queue = new Queue(`floor-jobs-${Date.now()}`, {
    connection: { host: url.hostname, port: Number(url.port || 6379) },
    prefix: 'bench',
  });
  for (let done = 0; done < count; done += 1000) {
    const size = Math.min(1000, count - done);
    await queue.addBulk(
      Array.from({ length: size }, (_, i) => ({
        name: 'noop',
        data: { runId: `run_${done + i}` },
      })),
    );
  }
  const before = process.cpuUsage();
  await processCeiling(queue, count); // obliterates and closes the queue
  return cpuUsSince(before) / count;
}

/**
 * Client CPU of one streamed SDK call, 16 at a time, to the fake model in a process of its own
 * (so its CPU is not counted).
 */
async function sdkCallCost(calls: number) {
  const port = await freePort();
  const fake = spawn(
    ['bun', join(import.meta.dir, '../harness/fake-llm/main.ts'), '--port', String(port)],
    { stdout: 'ignore', stderr: 'ignore' },
  );
  try {
    const answers = () =>
      fetch(`http://127.0.0.1:${port}/v1/models`).then(
        (response) => response.ok,
        () => false,
      );
    if (!(await waitForValue(answers, Boolean, 5000)))
      throw new Error('the fake model did not start');
    const config = loadConfig({
      DATABASE_URL: 'file::memory:',
      OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
    });
    const llm = createLlm(config);
    const messages = [{ role: 'user' as const, content: 'How many moons does Jupiter have?' }];
    const run = async (count: number) => {
      let started = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (started++ < count) {
            await llm.chat({ model: 'm', messages, onDelta: () => {} });
          }
        }),
      );
    };
    await run(Math.min(calls, 500)); // warm-up: the first calls compile the SDK's code
    const before = process.cpuUsage();
    await run(calls);
    return cpuUsSince(before) / calls;
  } finally {
    fake.kill();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-floor-'));
  const redis = await PrivateRedis.start();
  try {
    console.log(`measuring the floor${values.quick ? ' (quick)' : ''}…`);
    const floor = await measureFloor({
      redisUrl: redis.url,
      dir,
      quick: values.quick === true,
      progress: console.log,
    });
    console.log('\n| part | CPU µs |\n| --- | --- |');
    for (const [part, us] of floorRows(floor)) console.log(`| ${part} | ${us.toFixed(0)} |`);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
