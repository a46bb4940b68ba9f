/**
 * `bun run bench [--quick]`: what this server costs on top of its own ceilings, measured in one
 * run on one machine and one (private) Redis, so every figure is a ratio that holds on a noisy
 * box. The server runs as a child process; the load comes from autocannon in this process.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startFakeLlm } from '../harness/fake-llm';
import { PrivateRedis } from '../harness/private-redis';
import { type ServerProcess, spawnServer } from '../harness/processes';
import { promptGrowth } from './growth';
import {
  CompletionWatcher,
  cannon,
  cpuSeconds,
  percentile,
  processCeiling,
  queueAddCeiling,
} from './load';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const QUICK = values.quick === true;
const S = QUICK
  ? { durationS: 1, p2Runs: 400, lightRuns: 40, t1Runs: 200, p4Waves: 2, builds: 50 }
  : { durationS: 5, p2Runs: 3000, lightRuns: 200, t1Runs: 2000, p4Waves: 8, builds: 300 };
const P3_SIZES = [10, 1000, 100_000];
const P4_CONCURRENCY = 64;

const t0 = Date.now();
const progress = (line: string) =>
  console.log(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}`);

type Row = { figure: string; value: string; ratio?: string; target?: string; pass?: boolean };
const rows: Row[] = [];
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';

const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-'));
const redis = await PrivateRedis.start();
const llm = await startFakeLlm({ quiet: true });
const admin = new Redis(redis.url);
admin.on('error', () => {});
let dbCounter = 0;
const serverEnv = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: `file:${join(dir, `bench-${dbCounter++}.db`)}`,
  REDIS_URL: redis.url,
  REDIS_STREAM_KEY: 'bench_events',
  OPENAI_BASE_URL: llm.url,
  ADMIN_PASSWORD: 'bench',
  LOG_LEVEL: 'warn',
  ...extra,
});
const rssMb = (server: ServerProcess) => {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};
const message = () => JSON.stringify({ content: 'How many moons does Jupiter have?' });
/** T1's tool-step message: the fake model calls `lookup` once, then answers its result. */
const toolMessage = () =>
  JSON.stringify({
    content: 'How many moons does Jupiter have? [[tool:lookup {"q":"jupiter"}]]',
    tools: ['lookup'],
  });
const TOOL_RESULT = { moons: 95 };

/** T1's HTTP tool: answers every call at once with the same JSON, counting calls and keys. */
function startLookupTool() {
  const keys = new Set<string>();
  let calls = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      await request.text();
      calls += 1;
      keys.add(request.headers.get('idempotency-key') ?? '');
      return Response.json(TOOL_RESULT);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/lookup`,
    keys,
    get calls() {
      return calls;
    },
    stop: () => server.stop(true),
  };
}

/**
 * `runs` messages at 50 connections (each its own thread, as in P2) to a fresh server, every
 * run waited for: runs/s (first POST to the last completion) and the server's CPU per run, its
 * ingress included. The watcher keeps the completed payloads, for checking what the runs did.
 */
async function endToEnd(env: Record<string, string>, body: () => string, runs: number) {
  const server = await spawnServer('both', env);
  const watcher = new CompletionWatcher(redis.url, 'bench_events', { keepPayloads: true });
  const accepted = new Set<string>();
  try {
    const cpu = cpuSeconds(server);
    const start = Date.now();
    await cannon({
      url: `${server.baseUrl}/api/chat/messages`,
      connections: 50,
      amount: runs,
      method: 'POST',
      body,
      onAccepted: (text) => accepted.add(JSON.parse(text).runId),
    });
    await watcher.waitFor([...accepted], 120_000);
    const cpuPerRun = ((cpuSeconds(server) - cpu) * 1e6) / accepted.size;
    const done = [...accepted].filter((id) => watcher.completedAt.has(id));
    const last = Math.max(...done.map((id) => watcher.completedAt.get(id) as number));
    const payloads = done.map((id) => watcher.completedPayload.get(id));
    return {
      accepted: accepted.size,
      done: done.length,
      rate: done.length / ((last - start) / 1000),
      cpuPerRun,
      payloads,
    };
  } finally {
    await watcher.close();
    await server.kill('SIGKILL');
    await admin.flushall();
  }
}

try {
  console.log(
    `agent-run bench${QUICK ? ' --quick' : ''}: ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}\n`,
  );

  // Ceilings: what the parts can do on their own, on this machine, right now.
  progress('raw HTTP ceiling: GET /health, 50 connections');
  let server = await spawnServer('api', serverEnv());
  const http = await cannon({
    url: `${server.baseUrl}/health`,
    connections: 50,
    durationS: S.durationS,
  });
  rows.push({ figure: 'raw HTTP ceiling (GET /health, 50 conn)', value: `${fmt(http.rps)} req/s` });

  progress(
    'raw queue ceilings: plain BullMQ add (50 in flight) and a no-op worker (concurrency 50)',
  );
  const add = await queueAddCeiling(redis.url, S.durationS * 1000);
  const processing = await processCeiling(add.queue, add.added);
  rows.push({ figure: 'raw queue.add (50 in flight)', value: `${fmt(add.rate)} jobs/s` });
  rows.push({
    figure: 'raw no-op processing (concurrency 50)',
    value: `${fmt(processing.rate)} jobs/s`,
  });

  // P1: ingress alone (api role): validation, one transaction, XADD and the job.
  progress('P1 ingress: POST /api/chat/messages, 50 connections');
  const p1Cpu = cpuSeconds(server);
  const p1 = await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 50,
    durationS: S.durationS,
    method: 'POST',
    body: message,
  });
  const p1Ratio = p1.rps / add.rate;
  rows.push({
    figure: `P1 ingress (p50 ${p1.p50} ms, p99 ${p1.p99} ms)`,
    value: `${fmt(p1.rps)} req/s`,
    ratio: `${p1Ratio.toFixed(2)} × queue.add`,
    target: '≥ 0.5',
    pass: p1Ratio >= 0.5 && p1.non2xx === 0 && p1.errors === 0,
  });
  rows.push({
    figure: 'P1 server CPU per accepted message',
    value: `${fmt(((cpuSeconds(server) - p1Cpu) * 1e6) / p1.total)} µs`,
  });
  await server.kill('SIGKILL');
  await admin.flushall();

  // P2: end to end with an instant model: API and worker in one process (the default).
  progress('P2 end to end: instant model, 50 connections');
  llm.reset();
  server = await spawnServer('both', serverEnv());
  const idleRss = rssMb(server);
  let watcher = new CompletionWatcher(redis.url, 'bench_events');
  const accepted = new Map<string, number>();
  const onAccepted = (body: string) => accepted.set(JSON.parse(body).runId, Date.now());
  const p2Cpu = cpuSeconds(server);
  const p2Start = Date.now();
  await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 50,
    amount: S.p2Runs,
    method: 'POST',
    body: message,
    onAccepted,
  });
  await watcher.waitFor([...accepted.keys()], 120_000);
  const done = [...accepted.keys()].filter((id) => watcher.completedAt.has(id));
  const lastDone = Math.max(...done.map((id) => watcher.completedAt.get(id) as number));
  const p2Rate = done.length / ((lastDone - p2Start) / 1000);
  const p2Latency = done.map(
    (id) => (watcher.completedAt.get(id) as number) - (accepted.get(id) as number),
  );
  const p2CpuPerRun = ((cpuSeconds(server) - p2Cpu) * 1e6) / accepted.size;
  const endRss = rssMb(server);
  const p2Ratio = p2Rate / processing.rate;
  rows.push({
    figure: `P2 end to end, ${fmt(done.length)}/${fmt(accepted.size)} runs (202→completed p50 ${fmt(percentile(p2Latency, 50))} ms, p99 ${fmt(percentile(p2Latency, 99))} ms)`,
    value: `${fmt(p2Rate)} runs/s`,
    ratio: `${p2Ratio.toFixed(2)} × no-op processing`,
    target: '≥ 0.3',
    pass: p2Ratio >= 0.3 && done.length === accepted.size,
  });

  rows.push({
    figure: 'P2 server CPU per run, its ingress included',
    value: `${fmt(p2CpuPerRun)} µs`,
  });

  progress('P2 light load: one message at a time');
  accepted.clear();
  await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 1,
    amount: S.lightRuns,
    method: 'POST',
    body: message,
    onAccepted,
  });
  await watcher.waitFor([...accepted.keys()], 60_000);
  const light = [...accepted.keys()]
    .filter((id) => watcher.completedAt.has(id))
    .map((id) => (watcher.completedAt.get(id) as number) - (accepted.get(id) as number));
  const lightMedian = percentile(light, 50);
  rows.push({
    figure: `P2 added latency at light load (p99 ${fmt(percentile(light, 99))} ms)`,
    value: `${fmt(lightMedian, 1)} ms median`,
    target: '≤ 10 ms',
    pass: lightMedian <= 10,
  });
  rows.push({
    figure: 'memory: RSS idle → end of P2',
    value: `${fmt(idleRss)} → ${fmt(endRss)} MB`,
  });
  await watcher.close();
  await server.kill('SIGKILL');
  await admin.flushall();

  // T1: a run with one tool step (2 model calls, 1 HTTP tool call, the step commits) beside a
  // plain run (1 model call), same settings, each on a fresh server and database.
  progress(
    `T1 tool step: ${fmt(S.t1Runs)} plain runs, then ${fmt(S.t1Runs)} runs with one tool call`,
  );
  const lookup = startLookupTool();
  try {
    const toolsFile = join(dir, 'tools.json');
    writeFileSync(
      toolsFile,
      JSON.stringify({
        http: [
          {
            name: 'lookup',
            description: 'Looks a fact up.',
            parameters: {
              type: 'object',
              properties: { q: { type: 'string' } },
              required: ['q'],
              additionalProperties: false,
            },
            url: lookup.url,
          },
        ],
      }),
    );
    llm.reset();
    const plain = await endToEnd(serverEnv({ TOOLS_FILE: toolsFile }), message, S.t1Runs);
    llm.reset();
    const tool = await endToEnd(serverEnv({ TOOLS_FILE: toolsFile }), toolMessage, S.t1Runs);
    // The figure counts only if every run really took the tool step: fail loudly otherwise.
    const problems: string[] = [];
    if (plain.done !== S.t1Runs) problems.push(`plain: ${plain.done}/${S.t1Runs} runs completed`);
    if (tool.done !== S.t1Runs) problems.push(`tool step: ${tool.done}/${S.t1Runs} runs completed`);
    const expected = `echo: lookup said ${JSON.stringify(TOOL_RESULT)}`;
    const wrong = tool.payloads.filter(
      (p) => p?.toolCalls !== 1 || p?.steps !== 2 || p?.content !== expected,
    );
    if (wrong.length > 0) {
      problems.push(
        `tool step: ${wrong.length} completed runs without exactly one tool step, e.g. ${JSON.stringify(wrong[0])}`,
      );
    }
    const plainWrong = plain.payloads.filter((p) => p?.toolCalls !== 0 || p?.steps !== 1);
    if (plainWrong.length > 0) {
      problems.push(`plain: ${plainWrong.length} completed runs with tool steps`);
    }
    if (lookup.calls !== S.t1Runs || lookup.keys.size !== S.t1Runs) {
      problems.push(
        `the tool server saw ${lookup.calls} calls (${lookup.keys.size} idempotency keys), not ${S.t1Runs}`,
      );
    }
    if (problems.length > 0)
      throw new Error(`T1 tool step is not measuring what it says:\n  ${problems.join('\n  ')}`);
    const t1Ratio = tool.cpuPerRun / plain.cpuPerRun;
    rows.push({
      figure: `T1 plain runs, ${fmt(plain.done)}/${fmt(plain.accepted)} (1 model call)`,
      value: `${fmt(plain.rate)} runs/s`,
    });
    rows.push({ figure: 'T1 plain run: server CPU per run', value: `${fmt(plain.cpuPerRun)} µs` });
    rows.push({
      figure: `T1 tool-step runs, ${fmt(tool.done)}/${fmt(tool.accepted)} (2 model calls, 1 HTTP tool call)`,
      value: `${fmt(tool.rate)} runs/s`,
      ratio: `${(tool.rate / plain.rate).toFixed(2)} × plain`,
    });
    rows.push({
      figure: 'T1 tool-step run: server CPU per run',
      value: `${fmt(tool.cpuPerRun)} µs`,
      ratio: `${t1Ratio.toFixed(2)} × plain`,
      // A tool step (a model call, a tool call, two commits) costs no more than a whole plain run.
      target: '≤ 2',
      pass: t1Ratio <= 2,
    });
  } finally {
    lookup.stop();
  }

  // P3: prompt building does not grow with the thread.
  progress(
    `P3 growth: prompt build for threads of ${P3_SIZES.map((n) => fmt(n)).join(', ')} messages`,
  );
  const growth = await promptGrowth(P3_SIZES, S.builds);
  for (const g of growth) {
    rows.push({
      figure: `P3 prompt for ${fmt(g.size)} messages (${g.promptMessages} messages, ${fmt(g.promptChars)} chars)`,
      value: `${g.medianMs.toFixed(3)} ms`,
    });
  }
  const growthRatio = (growth.at(-1)?.medianMs ?? 0) / (growth[0]?.medianMs ?? 1);
  rows.push({
    figure: 'P3 growth: 100 000 vs 10 messages',
    value: '',
    ratio: `${growthRatio.toFixed(2)} ×`,
    target: '≤ 1.5',
    pass: growthRatio <= 1.5,
  });

  // P4: when the model takes a second, the server should keep 64 calls in flight.
  progress(`P4 model-bound: a 1 s model, WORKER_CONCURRENCY=${P4_CONCURRENCY}`);
  llm.reset();
  llm.setDefault({ kind: 'reply', delayMs: 1000 });
  server = await spawnServer('both', serverEnv({ WORKER_CONCURRENCY: String(P4_CONCURRENCY) }));
  watcher = new CompletionWatcher(redis.url, 'bench_events');
  accepted.clear();
  const p4Start = Date.now();
  await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: P4_CONCURRENCY,
    amount: P4_CONCURRENCY * S.p4Waves,
    method: 'POST',
    body: message,
    onAccepted,
  });
  await watcher.waitFor([...accepted.keys()], 120_000);
  const p4Done = [...accepted.keys()].filter((id) => watcher.completedAt.has(id));
  const p4Last = Math.max(...p4Done.map((id) => watcher.completedAt.get(id) as number));
  const p4Rate = p4Done.length / ((p4Last - p4Start) / 1000);
  const p4Ratio = p4Rate / P4_CONCURRENCY;
  rows.push({
    figure: `P4 model-bound, ${p4Done.length} runs of 1 s`,
    value: `${p4Rate.toFixed(1)} runs/s`,
    ratio: `${p4Ratio.toFixed(2)} × 64`,
    target: '≥ 0.9',
    pass: p4Ratio >= 0.9,
  });
  await watcher.close();
  await server.kill('SIGKILL');
} finally {
  admin.disconnect();
  await llm.stop();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

const failed = rows.filter((r) => r.pass === false);
console.log(`\n| figure | value | ratio | target | result |\n| --- | --- | --- | --- | --- |`);
for (const r of rows) {
  const result = r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL';
  console.log(`| ${r.figure} | ${r.value} | ${r.ratio ?? ''} | ${r.target ?? ''} | ${result} |`);
}
console.log(
  `\n${rows.filter((r) => r.pass).length} PASS, ${failed.length} FAIL in ${((Date.now() - t0) / 1000).toFixed(0)} s` +
    (QUICK ? ' (quick smoke run: figures are rough, targets are not enforced)' : ''),
);
process.exit(!QUICK && failed.length > 0 ? 1 : 0);
