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
import { newWebhookSecret } from '../harness/webhook-receiver';
import { feedFigures } from './feeds';
import { floorRows, measureFloor } from './floor';
import { promptGrowth } from './growth';
import { CompletionWatcher, cannon, cpuSeconds, percentile, type Row } from './load';
import { recoveryFigures } from './recovery';
import { formatCpu, oneWorkerRate } from './scale-out';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const QUICK = values.quick === true;
const S = QUICK
  ? {
      durationS: 1,
      warmUpRuns: 200,
      p2Runs: 400,
      lightRuns: 40,
      t1Runs: 200,
      p8Runs: 200,
      p4Rounds: 1,
      builds: 50,
    }
  : {
      durationS: 5,
      warmUpRuns: 1000,
      p2Runs: 3000,
      lightRuns: 200,
      t1Runs: 2000,
      p8Runs: 2000,
      p4Rounds: 4,
      builds: 300,
    };
const P3_SIZES = [10, 1000, 100_000];
/** P4: this many users at once, each waiting for its run before the next message. */
const P4_USERS = 256;
/** P4's model streams these pieces over one second. */
const P4_CHUNKS = 'Jupiter has ninety-five known moons, the four largest found by Galileo in 1610.'
  .split(' ')
  .map((word, i) => (i === 0 ? word : ` ${word}`));

const t0 = Date.now();
const progress = (line: string) =>
  console.log(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}`);

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

/** A TOOLS_FILE naming one HTTP tool, `lookup`, at `url`; its path. */
function writeToolsFile(url: string) {
  const path = join(dir, `tools-${dbCounter++}.json`);
  writeFileSync(
    path,
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
          url,
        },
      ],
    }),
  );
  return path;
}

/** A webhook receiver that only counts what reaches it (P8 expects nothing). */
function startCountingReceiver() {
  let requests = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch() {
      requests += 1;
      return new Response(null, { status: 204 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hooks`,
    get requests() {
      return requests;
    },
    stop: () => server.stop(true),
  };
}

/**
 * `runs` messages at 50 connections (each its own thread, as in P2) to a fresh server, every
 * run waited for: runs/s (first POST to the last completion), the server's CPU per run (its
 * ingress included), each run's 202→completed latency, and the server's RSS idle and at the end.
 * The watcher keeps the completed payloads, for checking what the runs did.
 */
async function endToEnd(
  env: Record<string, string>,
  body: () => string,
  runs: number,
  opts: { connections?: number; latency?: boolean; warmUp?: number } = {},
) {
  const server = await spawnServer('both', env);
  const watcher = new CompletionWatcher(redis.url, 'bench_events', { keepPayloads: true });
  const accepted = new Map<string, number>();
  try {
    const idleRss = rssMb(server);
    if (opts.warmUp) {
      // Not counted: the first runs compile the server's code (Bun's JIT thread is part of the
      // process's CPU), as P1's warm-up and the floor's do; the figure is a warm server's.
      const warming: string[] = [];
      await cannon({
        url: `${server.baseUrl}/api/chat/messages`,
        connections: opts.connections ?? 50,
        amount: opts.warmUp,
        method: 'POST',
        body,
        onAccepted: (text) => warming.push(JSON.parse(text).runId),
      });
      await watcher.waitFor(warming, 120_000);
    }
    const cpu = cpuSeconds(server);
    const start = Date.now();
    await cannon({
      url: `${server.baseUrl}/api/chat/messages`,
      connections: opts.connections ?? 50,
      amount: runs,
      method: 'POST',
      body,
      onAccepted: (text) => accepted.set(JSON.parse(text).runId, Date.now()),
    });
    await watcher.waitFor([...accepted.keys()], 120_000);
    const cpuPerRun = ((cpuSeconds(server) - cpu) * 1e6) / accepted.size;
    const endRss = rssMb(server);
    const done = [...accepted.keys()].filter((id) => watcher.completedAt.has(id));
    const last = Math.max(...done.map((id) => watcher.completedAt.get(id) as number));
    const payloads = done.map((id) => watcher.completedPayload.get(id));
    const latencies = opts.latency
      ? done.map((id) => (watcher.completedAt.get(id) as number) - (accepted.get(id) as number))
      : [];
    return {
      accepted: accepted.size,
      done: done.length,
      rate: done.length / ((last - start) / 1000),
      cpuPerRun,
      payloads,
      latencies,
      idleRss,
      endRss,
    };
  } finally {
    await watcher.close();
    await server.kill('SIGKILL');
    await admin.flushall();
  }
}

/**
 * P4's users: `users` threads, each posting a message and waiting for its run to complete
 * before the next, `rounds` times, to a fresh server with the default settings. Runs/s from
 * the first POST to the last completion, and the server's peak RSS.
 */
async function modelBound(users: number, rounds: number) {
  const server = await spawnServer('both', serverEnv());
  const watcher = new CompletionWatcher(redis.url, 'bench_events');
  let peakRss = rssMb(server);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMb(server));
  }, 200);
  try {
    const post = async (threadId?: string) => {
      const response = await fetch(`${server.baseUrl}/api/chat/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'How many moons does Jupiter have?', threadId }),
      });
      if (response.status !== 202) throw new Error(`P4: a message was answered ${response.status}`);
      return (await response.json()) as { runId: string; threadId: string };
    };
    let completed = 0;
    const start = Date.now();
    await Promise.all(
      Array.from({ length: users }, async () => {
        let threadId: string | undefined;
        for (let round = 0; round < rounds; round++) {
          const accepted = await post(threadId);
          threadId = accepted.threadId;
          if (await watcher.completion(accepted.runId, 60_000)) completed += 1;
        }
      }),
    );
    const seconds = (Date.now() - start) / 1000;
    return { completed, rate: completed / seconds, peakRss };
  } finally {
    clearInterval(sampler);
    await watcher.close();
    await server.kill('SIGKILL');
    await admin.flushall();
  }
}

try {
  console.log(
    `agent-run bench${QUICK ? ' --quick' : ''}: ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}\n`,
  );

  // The floor: what the parts every message and run need cost on their own, in this run.
  progress('the floor: the parts every message and run need, each on its own');
  const floor = await measureFloor({ redisUrl: redis.url, dir, quick: QUICK, progress });
  for (const [figure, us] of floorRows(floor)) rows.push({ figure, value: `${fmt(us)} µs` });
  await admin.flushall();

  // P1: ingress alone (api role): validation, one transaction, XADD and the job.
  progress('P1 ingress: POST /api/chat/messages, 50 connections');
  const server = await spawnServer('api', serverEnv());
  // Warm-up: the first requests compile the route's code, which the floor's HTTP part skips too.
  await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 50,
    amount: 1000,
    method: 'POST',
    body: message,
  });
  const p1Cpu = cpuSeconds(server);
  const p1 = await cannon({
    url: `${server.baseUrl}/api/chat/messages`,
    connections: 50,
    durationS: S.durationS,
    method: 'POST',
    body: message,
  });
  const p1CpuUs = ((cpuSeconds(server) - p1Cpu) * 1e6) / p1.total;
  rows.push({
    figure: `P1 ingress rate (p50 ${p1.p50} ms, p99 ${p1.p99} ms)`,
    value: `${fmt(p1.rps)} req/s`,
  });
  const p1Ratio = p1CpuUs / floor.p1;
  rows.push({
    figure: 'P1 ingress: server CPU per accepted message',
    value: `${fmt(p1CpuUs)} µs`,
    ratio: `${p1Ratio.toFixed(2)} × floor`,
    target: '≤ 1.5',
    pass: p1Ratio <= 1.5 && p1.non2xx === 0 && p1.errors === 0,
  });
  await server.kill('SIGKILL');
  await admin.flushall();

  // P2: end to end with an instant model: API and worker in one process (the default).
  progress('P2 end to end: instant model, 50 connections');
  llm.reset();
  const p2 = await endToEnd(serverEnv(), message, S.p2Runs, {
    latency: true,
    warmUp: S.warmUpRuns,
  });
  const p2Ratio = p2.cpuPerRun / floor.p2;
  rows.push({
    figure: `P2 end to end, ${fmt(p2.done)}/${fmt(p2.accepted)} runs (202→completed p50 ${fmt(percentile(p2.latencies, 50))} ms, p99 ${fmt(percentile(p2.latencies, 99))} ms)`,
    value: `${fmt(p2.rate)} runs/s`,
  });
  rows.push({
    figure: 'P2 run: server CPU per run, its ingress included',
    value: `${fmt(p2.cpuPerRun)} µs`,
    ratio: `${p2Ratio.toFixed(2)} × floor`,
    target: '≤ 1.5',
    pass: p2Ratio <= 1.5 && p2.done === p2.accepted,
  });

  progress('P2 light load: one message at a time');
  llm.reset();
  const light = await endToEnd(serverEnv(), message, S.lightRuns, {
    connections: 1,
    latency: true,
  });
  const lightMedian = percentile(light.latencies, 50);
  rows.push({
    figure: `P2 added latency at light load (p99 ${fmt(percentile(light.latencies, 99))} ms)`,
    value: `${fmt(lightMedian, 1)} ms median`,
    target: '≤ 10 ms',
    pass: lightMedian <= 10 && light.done === light.accepted,
  });
  rows.push({
    figure: 'memory: RSS idle → end of P2',
    value: `${fmt(p2.idleRss)} → ${fmt(p2.endRss)} MB`,
  });

  // T1: a run with one tool step (2 model calls, 1 HTTP tool call, the step commits) beside a
  // plain run (1 model call), same settings, each on a fresh server and database.
  progress(
    `T1 tool step: ${fmt(S.t1Runs)} plain runs, then ${fmt(S.t1Runs)} runs with one tool call`,
  );
  const lookup = startLookupTool();
  try {
    const toolsFile = writeToolsFile(lookup.url);
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

  // P8: the paths a run does not take cost it nothing: P2's run with a model budget, tools and
  // webhooks configured (none of them used by the run) beside the same run without them,
  // alternating, each pass on a fresh server; the lower CPU per run of each pair of passes.
  progress(`P8 unused paths: ${fmt(S.p8Runs)} runs, without and with them configured, twice`);
  const receiver = startCountingReceiver();
  try {
    const configured = {
      TOOLS_FILE: writeToolsFile('http://127.0.0.1:9/unused'),
      CHAT_MODEL_CONTEXT_TOKENS: 'gpt-4o-mini=128000',
      WEBHOOK_SECRET: newWebhookSecret(),
      WEBHOOK_URL: receiver.url,
      // A plain run announces none of these: the deployment-wide webhook is configured, unused.
      WEBHOOK_EVENTS: 'agent.run.requires_action',
      WEBHOOK_ALLOWED_URLS: receiver.url,
    };
    const without: number[] = [];
    const withThem: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      llm.reset();
      const warmUp = S.warmUpRuns;
      without.push((await endToEnd(serverEnv(), message, S.p8Runs, { warmUp })).cpuPerRun);
      llm.reset();
      const run = await endToEnd(serverEnv(configured), message, S.p8Runs, { warmUp });
      if (run.done !== S.p8Runs) throw new Error(`P8: ${run.done}/${S.p8Runs} runs completed`);
      withThem.push(run.cpuPerRun);
    }
    const plainUs = Math.min(...without);
    const configuredUs = Math.min(...withThem);
    const p8Ratio = configuredUs / plainUs;
    rows.push({
      figure: `P8 run without tools, webhooks or a model budget configured (passes: ${without.map((n) => fmt(n)).join(', ')} µs)`,
      value: `${fmt(plainUs)} µs`,
    });
    rows.push({
      figure: `P8 the same run with them configured, unused (passes: ${withThem.map((n) => fmt(n)).join(', ')} µs; webhook requests: ${receiver.requests})`,
      value: `${fmt(configuredUs)} µs`,
      ratio: `${p8Ratio.toFixed(2)} × without`,
      target: '≤ 1.1',
      pass: p8Ratio <= 1.1 && receiver.requests === 0,
    });
  } finally {
    receiver.stop();
  }

  // P7: 1 000 SSE clients on 20 streaming runs, each held to the run's replay.
  progress('P7 live feeds: SSE clients watching streaming runs');
  llm.reset();
  rows.push(...(await feedFigures({ quick: QUICK, redisUrl: redis.url, llmUrl: llm.url, dir })));
  await admin.flushall();

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

  // P4: a model that streams for a second, 256 users at once, and no WORKER_CONCURRENCY set:
  // the default must keep every user's call in flight (runs wait on the network, not the CPU).
  progress(`P4 defaults: ${P4_USERS} threads, a model that streams for 1 s, no WORKER_CONCURRENCY`);
  llm.reset();
  llm.setDefault({ kind: 'stream', chunks: P4_CHUNKS, delayMs: 1000 / P4_CHUNKS.length });
  const p4 = await modelBound(P4_USERS, S.p4Rounds);
  const p4Ratio = p4.rate / P4_USERS;
  rows.push({
    figure: `P4 defaults: ${fmt(p4.completed)}/${fmt(P4_USERS * S.p4Rounds)} runs of a 1 s streamed model, ${P4_USERS} threads (RSS peak ${fmt(p4.peakRss)} MB)`,
    value: `${p4.rate.toFixed(1)} runs/s`,
    ratio: `${p4Ratio.toFixed(2)} × ${P4_USERS}`,
    target: '≥ 0.8',
    pass: p4Ratio >= 0.8 && p4.completed === P4_USERS * S.p4Rounds,
  });
  // P6: PostgreSQL at SQLite's pace: end-to-end runs/s with 1 API and 1 worker process on each.
  progress('P6 PostgreSQL against SQLite: 1 API + 1 worker process, an instant model');
  const p6 = { messages: QUICK ? 300 : 2000, threads: 50, redisUrl: redis.url };
  const onSqlite = await oneWorkerRate({ ...p6, db: 'sqlite' });
  await admin.flushall();
  const onPostgres = await oneWorkerRate({ ...p6, db: 'postgres' });
  await admin.flushall();
  const p6Ratio = onPostgres.rate / onSqlite.rate;
  rows.push({
    figure: `P6 scale-out with one worker, ${fmt(p6.messages)} messages over ${p6.threads} threads: SQLite (CPU µs a run: API · worker · database server · machine ${formatCpu(onSqlite.cpu)})`,
    value: `${fmt(onSqlite.rate)} runs/s`,
  });
  rows.push({
    figure: `P6 the same on PostgreSQL (CPU µs a run: ${formatCpu(onPostgres.cpu)})`,
    value: `${fmt(onPostgres.rate)} runs/s`,
    ratio: `${p6Ratio.toFixed(2)} × SQLite`,
    target: '≥ 0.8',
    pass: p6Ratio >= 0.8,
  });

  // R1, R2: a dead worker's runs are running again within seconds, with the default settings.
  progress('R1 recovery and R2 takeover: runs of a 5 s model, a process SIGKILLed');
  rows.push(...(await recoveryFigures({ quick: QUICK, redisUrl: redis.url, dir })));
  await admin.flushall();
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
// Every target's figure must be there, as a number, in --quick too (which judges none of them).
const TARGETS = [
  'P1 ',
  'P2 run',
  'P2 added latency',
  'P3 growth',
  'P4 ',
  'P6 the same',
  'P7 missed',
  'P8 the same',
  'R1 ',
  'R2 ',
  'T1 tool-step run',
];
const missing = TARGETS.filter(
  (prefix) =>
    !rows.some(
      (r) => r.figure.startsWith(prefix) && r.pass !== undefined && !/n\/a|NaN/.test(r.value),
    ),
);
if (missing.length > 0) console.log(`figures missing or not numbers: ${missing.join(', ')}`);
process.exit(missing.length > 0 || (!QUICK && failed.length > 0) ? 1 : 0);
