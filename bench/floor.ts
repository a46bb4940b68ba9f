/**
 * `bun run bench:floor`: what the parts that every message needs cost on their own, in CPU time
 * (not rates, which a shared box bends), and what that leaves of bench P1's and P2's targets.
 * The parts: an HTTP request whose JSON body is parsed and validated (the server's own route,
 * answered 400 for a blank content, so no store work), the SQLite store's commit of an accepted
 * message (bench/store-cost.ts), a plain BullMQ `queue.add`, a plain BullMQ no-op job, and one
 * call of the `openai` SDK to the fake model (streamed, as runs are, and plain), each measured
 * in the process that does it. The targets give the server a budget per message; if these parts
 * alone use it up, no implementation of the contract meets it here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'bun';
import { freePort } from '../harness/ports';
import { PrivateRedis } from '../harness/private-redis';
import { spawnServer } from '../harness/processes';
import { waitForValue } from '../harness/wait';
import { loadConfig } from '../src/config';
import { createLlm } from '../src/llm/openai';
import { cannon, cpuSeconds, processCeiling, queueAddCeiling } from './load';
import { storeCost } from './store-cost';

const P1_TARGET = 0.5;
const P2_TARGET = 0.3;
const SDK_CALLS = 3000;
const SDK_CONCURRENCY = 16;

/** CPU µs this process has spent since `before` (a `process.cpuUsage()`). */
const cpuUsSince = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before);
  return used.user + used.system;
};

const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-floor-'));
const redis = await PrivateRedis.start();
const rows: [string, string][] = [];
const us = (n: number) => `${n.toFixed(0)} µs`;
try {
  console.log('plain BullMQ: queue.add (50 in flight), then a no-op worker (concurrency 50)');
  let before = process.cpuUsage();
  const add = await queueAddCeiling(redis.url, 4000);
  const addUs = cpuUsSince(before) / add.added;
  before = process.cpuUsage();
  const processingRate = (await processCeiling(add.queue, add.added)).rate;
  const jobUs = cpuUsSince(before) / add.added;
  rows.push(['queue.add: rate; client CPU an add', `${add.rate.toFixed(0)}/s; ${us(addUs)}`]);
  rows.push(['no-op job: rate; client CPU a job', `${processingRate.toFixed(0)}/s; ${us(jobUs)}`]);

  console.log('the server: POST /api/chat/messages with a blank content, 50 connections');
  const server = await spawnServer('api', {
    DATABASE_URL: `file:${join(dir, 'floor.db')}`,
    REDIS_URL: redis.url,
    REDIS_STREAM_KEY: 'floor_events',
    ADMIN_PASSWORD: 'floor',
    LOG_LEVEL: 'warn',
  });
  const serverBefore = cpuSeconds(server);
  const posts = await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 50,
    durationS: 4,
    method: 'POST',
    body: () => JSON.stringify({ content: '   ' }),
  });
  const httpUs = ((cpuSeconds(server) - serverBefore) * 1e6) / posts.total;
  await server.kill('SIGKILL');
  rows.push(['HTTP request, JSON parsed and validated: server CPU', us(httpUs)]);

  // Wall time of a loop that only writes: the event loop's time, which is what the server pays.
  console.log('the SQLite store: 20 000 accepted messages, Cuid2 ids, then time-ordered ones');
  const storeUs = (await storeCost('cuid2', 20_000)).usPerMessage;
  const orderedStoreUs = (await storeCost('ordered', 20_000)).usPerMessage;
  rows.push(['the store commits an accepted message (Cuid2 ids)', us(storeUs)]);
  rows.push(['the same with time-ordered ids', us(orderedStoreUs)]);

  console.log(
    `the openai SDK: ${SDK_CALLS} calls, ${SDK_CONCURRENCY} at a time, streamed and plain`,
  );
  const port = await freePort();
  const fake = spawn(
    ['bun', join(import.meta.dir, '../harness/fake-llm/main.ts'), '--port', String(port)],
    {
      stdout: 'ignore',
      stderr: 'ignore',
    },
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
    /** CPU µs a call, SDK_CALLS calls SDK_CONCURRENCY at a time. */
    const callUs = async (stream: boolean) => {
      const before = process.cpuUsage();
      let started = 0;
      await Promise.all(
        Array.from({ length: SDK_CONCURRENCY }, async () => {
          while (started++ < SDK_CALLS) {
            await llm.chat({ model: 'm', messages, ...(stream ? { onDelta: () => {} } : {}) });
          }
        }),
      );
      return cpuUsSince(before) / SDK_CALLS;
    };
    await callUs(true); // warm-up: the first calls compile the SDK's code
    const streamedUs = await callUs(true);
    const plainUs = await callUs(false);
    rows.push(['openai SDK call, streamed: client CPU', us(streamedUs)]);
    rows.push(['openai SDK call, plain: client CPU', us(plainUs)]);

    // The budgets give the server a whole core, which it does not have: Redis and the load
    // generator share the machine's cores with it.
    const p1Budget = 1e6 / (P1_TARGET * add.rate);
    // A 202 comes after the commit (docs/reliability.md), so the store's part belongs to the floor; it is
    // taken at its cheaper, time-ordered figure. The XADD, the ids and the run's writes are not.
    const p1Floor = httpUs + orderedStoreUs + addUs;
    const p2Budget = 1e6 / (P2_TARGET * processingRate);
    const p2Floor = p1Floor + jobUs + streamedUs;
    rows.push([`P1 ≥ ${P1_TARGET} × queue.add: budget a message on one whole core`, us(p1Budget)]);
    rows.push([
      'P1 floor: the HTTP request + the commit (time-ordered ids) + one queue.add',
      us(p1Floor),
    ]);
    rows.push([
      `P2 ≥ ${P2_TARGET} × no-op processing: budget a run on one whole core`,
      us(p2Budget),
    ]);
    rows.push(['P2 floor: P1 floor + a no-op job + a streamed SDK call', us(p2Floor)]);
    console.log('\n| part | cost |\n| --- | --- |');
    for (const [part, cost] of rows) console.log(`| ${part} | ${cost} |`);
    const verdict = (floor: number, budget: number) =>
      floor >= budget ? 'above its budget: not reachable here' : 'within its budget';
    console.log(
      `\nP1 floor ${verdict(p1Floor, p1Budget)}; P2 floor ${verdict(p2Floor, p2Budget)}.`,
    );
  } finally {
    fake.kill();
  }
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
