/**
 * `bun run bench:profile [--phase p1|p2] [--db sqlite|postgres] [--messages N] [--duration S | --amount N] [--top N] [--warm-up N] [--no-profile]`: where the
 * server's CPU goes. Starts the server child as bench P1 (api role, 50 connections for
 * `--duration` seconds) or P2 (both roles, `--messages` messages, each its own thread, every run
 * waited for) does, but under `bun --cpu-prof`, then stops it with SIGTERM (the profile is
 * written on exit) and prints the server's CPU per message from /proc, and the profile's top
 * functions by self time and by total time, and self time by area (our folders, each package).
 * The profile samples the JavaScript thread only: /proc's figure also holds Bun's other threads.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'bun';
import { startFakeLlm } from '../harness/fake-llm';
import { freePort } from '../harness/ports';
import { PrivateRedis } from '../harness/private-redis';
import { createTestDatabase } from '../harness/test-database';
import { CompletionWatcher, cannon, cpuSeconds } from './load';

const { values } = parseArgs({
  options: {
    phase: { type: 'string', default: 'p1' },
    /** The server's store: its own SQLite file, or a new database on TEST_POSTGRES_URL. */
    db: { type: 'string', default: 'sqlite' },
    messages: { type: 'string', default: '3000' },
    duration: { type: 'string', default: '8' },
    /** P1 posts this many messages instead of posting for `--duration` (a fixed amount compares better: the JIT's cost is spread over what was done). */
    amount: { type: 'string' },
    top: { type: 'string', default: '40' },
    /** Messages posted first, not measured: the JIT's first passes (its later tiers go on longer). */
    'warm-up': { type: 'string', default: '500' },
    interval: { type: 'string', default: '250' },
    /** Only the CPU figure: the server runs without the profiler. */
    'no-profile': { type: 'boolean', default: false },
  },
});
const PHASE = values.phase === 'p2' ? 'p2' : 'p1';
const ROOT = join(import.meta.dir, '..');
const PROFILE = values['no-profile'] !== true;

const dir = mkdtempSync(join(tmpdir(), 'agent-run-profile-'));
const database = await createTestDatabase(dir, values.db === 'postgres' ? 'postgres' : 'sqlite');
const redis = await PrivateRedis.start();
const llm = await startFakeLlm({ quiet: true });
try {
  const port = await freePort();
  const proc = spawn(
    [
      'bun',
      ...(PROFILE
        ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${values.interval}`]
        : []),
      join(ROOT, 'src/main.ts'),
      ...(PHASE === 'p1' ? ['api'] : []),
    ],
    {
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        REDIS_STREAM_KEY: 'bench_events',
        OPENAI_BASE_URL: llm.url,
        ADMIN_PASSWORD: 'bench',
        LOG_LEVEL: 'warn',
        PORT: String(port),
      },
      stdout: 'inherit',
      stderr: 'inherit',
    },
  );
  const base = `http://127.0.0.1:${port}`;
  const server = { proc };
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 600) throw new Error('the server was not ready in 30 s');
    await Bun.sleep(50);
  }
  const body = () => JSON.stringify({ content: 'How many moons does Jupiter have?' });
  // Warm-up, so the profile is of the steady state rather than of the JIT's first passes.
  await cannon({
    url: `${base}/api/chat/messages`,
    connections: 50,
    amount: Number(values['warm-up']),
    method: 'POST',
    body,
  });
  await Bun.sleep(PHASE === 'p2' ? 2000 : 200);
  const before = cpuSeconds(server);
  const threadsBefore = threadCpu(proc.pid);
  const startedAt = performance.now();
  let count: number;
  if (PHASE === 'p1') {
    const result = await cannon({
      url: `${base}/api/chat/messages`,
      connections: 50,
      ...(values.amount
        ? { amount: Number(values.amount) }
        : { durationS: Number(values.duration) }),
      method: 'POST',
      body,
    });
    count = result.total;
  } else {
    const watcher = new CompletionWatcher(redis.url, 'bench_events');
    const accepted: string[] = [];
    await cannon({
      url: `${base}/api/chat/messages`,
      connections: 50,
      amount: Number(values.messages),
      method: 'POST',
      body,
      onAccepted: (text) => accepted.push(JSON.parse(text).runId),
    });
    await watcher.waitFor(accepted, 120_000);
    const done = accepted.filter((id) => watcher.completedAt.has(id)).length;
    await watcher.close();
    if (done !== accepted.length) console.log(`only ${done}/${accepted.length} runs completed`);
    count = accepted.length;
  }
  const cpuUs = ((cpuSeconds(server) - before) * 1e6) / count;
  const threadsAfter = threadCpu(proc.pid);
  const measuredMs = performance.now() - startedAt;
  const killedAt = performance.now();
  proc.kill('SIGTERM');
  await proc.exited;
  // The profile runs until exit: the window measured is what ended this long before its end.
  const shutdownMs = performance.now() - killedAt;
  console.log(
    `\n${PHASE}: ${count} ${PHASE === 'p1' ? 'messages' : 'runs'}, server CPU ${cpuUs.toFixed(0)} µs each (/proc, all threads)`,
  );
  // Which of the server's threads used that CPU: the profile sees only the JavaScript one.
  const byName = new Map<string, { user: number; system: number }>();
  for (const [tid, after] of threadsAfter) {
    const was = threadsBefore.get(tid) ?? { name: after.name, user: 0, system: 0 };
    const sum = byName.get(after.name) ?? { user: 0, system: 0 };
    sum.user += after.user - was.user;
    sum.system += after.system - was.system;
    byName.set(after.name, sum);
  }
  console.log('server threads: µs each (user + system)');
  for (const [name, { user, system }] of [...byName].sort(
    (a, b) => b[1].user + b[1].system - (a[1].user + a[1].system),
  )) {
    if (user + system === 0) continue;
    const each = (ticks: number) => ((ticks / 100) * 1e6) / count;
    console.log(
      `  ${name.padEnd(18)} ${each(user + system)
        .toFixed(0)
        .padStart(6)} (${each(user).toFixed(0)} + ${each(system).toFixed(0)})`,
    );
  }
  if (PROFILE) {
    const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error('no .cpuprofile was written');
    summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), Number(values.top), {
      fromEndMs: measuredMs + shutdownMs,
      toEndMs: shutdownMs,
    });
  }
} finally {
  await llm.stop();
  await redis.stop();
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
}

/** CPU clock ticks of each thread of a process so far, with its name (Linux /proc). */
function threadCpu(pid: number) {
  const threads = new Map<string, { name: string; user: number; system: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(tid, { name, user: Number(fields[11]), system: Number(fields[12]) });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self and total time per function, and self time per area, as shares of the samples taken in
 * the measured window (start-up, warm-up and shutdown left out). A native function's self time
 * is labelled with the nearest JavaScript function that called it.
 */
function summarise(profile: Profile, top: number, window: { fromEndMs: number; toEndMs: number }) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const times: number[] = [];
  let at = 0;
  for (const delta of profile.timeDeltas) {
    at += delta;
    times.push(at);
  }
  const end = at;
  const counts = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (end - (times[i] as number)) / 1000;
    if (ms > window.fromEndMs || ms < window.toEndMs) return;
    counts.set(id, (counts.get(id) ?? 0) + 1);
    total++;
  });
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${relative(ROOT, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
    return `${functionName || '(anonymous)'} ${where}`.trim();
  };
  const area = (node: ProfileNode) => {
    const url = node.callFrame.url.replace(/^file:\/\//, '');
    if (!url)
      return node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(native)';
    const path = relative(ROOT, url);
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    if (pkg) return pkg[1] as string;
    const parts = path.split('/');
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  const callerOf = (id: number) => {
    for (let up = parent.get(id); up !== undefined; up = parent.get(up)) {
      const node = byId.get(up) as ProfileNode;
      if (node.callFrame.url && !node.callFrame.url.startsWith('bun:')) return label(node);
    }
    return '';
  };
  for (const [id, n] of counts) {
    const node = byId.get(id) as ProfileNode;
    const name = node.callFrame.url ? label(node) : `${label(node)} ← ${callerOf(id)}`;
    self.set(name, (self.get(name) ?? 0) + n);
    areas.set(area(node), (areas.get(area(node)) ?? 0) + n);
    // Each function on the sample's stack once, however often it recurs.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at) as ProfileNode);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + n);
    }
  }
  const print = (title: string, map: Map<string, number>, limit: number) => {
    console.log(`\n${title} (${total} samples)`);
    for (const [name, n] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      console.log(`${((100 * n) / total).toFixed(1).padStart(5)} %  ${name}`);
    }
  };
  print('self time by area', areas, 30);
  print('self time by function', self, top);
  print('total time by function', inclusive, top);
}
