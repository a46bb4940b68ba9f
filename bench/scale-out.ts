/**
 * `bun run bench:scale-out [--db sqlite|postgres] [--messages N] [--threads N] [--workers 1,2,3]`:
 * end-to-end throughput with 1, 2 and 3 worker processes (or the counts `--workers` lists). Each round: a fresh database
 * (harness/test-database.ts), a flushed private Redis, 1 `bun src/main.ts api` process and N
 * `bun src/main.ts worker` processes, an instant fake model, and M messages (default 500) over
 * T threads (default 50) posted 32 at a time, each thread's in order. Time is from the first
 * POST to the last terminal event on the stream (its `occurredAt`). Ends with one table.
 * `oneWorkerRate` is the 1-worker round on its own, for the main bench.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EventReader, isTerminal, type StreamEntry } from '../harness/event-reader';
import { startFakeLlm } from '../harness/fake-llm';
import { PrivateRedis } from '../harness/private-redis';
import { type ProcessGroup, startProcessGroup } from '../harness/processes';
import { createTestDatabase } from '../harness/test-database';
import { postThreadedMessages } from '../harness/threaded-messages';
import { cpuTicks } from './load';

type Dialect = 'sqlite' | 'postgres';
const DEFAULT_WORKER_COUNTS = [1, 2, 3];
const POST_CONCURRENCY = 32;
/** A round that has not ended by then is reported as incomplete (and the bench fails). */
const ROUND_TIMEOUT_MS = 150_000;
const PROGRESS_EVERY_MS = 2000;

interface Row {
  workers: number;
  accepted: number;
  ended: number;
  failed: number;
  seconds: number;
  /** CPU µs a run, from the first POST to the last run's end (see `cpuSnapshot`). */
  cpu: CpuPerRun;
}

/**
 * Where a round's CPU went, per run ended: the API process, the worker processes, the
 * PostgreSQL server's processes (0 on SQLite, whose work is in the API and the workers), and
 * the whole machine (those, Redis, the fake model and this process; /proc/stat).
 */
export interface CpuPerRun {
  api: number;
  workers: number;
  database: number;
  machine: number;
}

/** CPU ticks so far: of the given processes, of PostgreSQL's processes, of the machine. */
function cpuSnapshot(pids: number[]) {
  const ticks = (pid: number | string) => {
    try {
      return cpuTicks(pid);
    } catch {
      return 0; // ended meanwhile
    }
  };
  let database = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') database += ticks(pid);
    } catch {
      // ended meanwhile
    }
  }
  // The first line of /proc/stat: user nice system idle iowait irq softirq steal …
  const all = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1, 9);
  const [user, nice, system, , , irq, softirq, steal] = all.map(Number);
  const machine =
    (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { processes: pids.map(ticks), database, machine };
}

/** µs a run between two snapshots; the first of `pids` is the API, the rest the workers. */
function cpuPerRun(
  before: ReturnType<typeof cpuSnapshot>,
  after: ReturnType<typeof cpuSnapshot>,
  runs: number,
): CpuPerRun {
  const us = (ticks: number) => (ticks * 10_000) / runs; // 100 ticks a second
  const delta = after.processes.map((t, i) => t - (before.processes[i] ?? 0));
  return {
    api: us(delta[0] ?? 0),
    workers: us(delta.slice(1).reduce((a, b) => a + b, 0)),
    database: us(after.database - before.database),
    machine: us(after.machine - before.machine),
  };
}

interface RoundOptions {
  db: Dialect;
  messages: number;
  threads: number;
  workers: number;
  redisUrl: string;
  llmUrl: string;
  /** Progress lines; none when omitted. */
  progress?: (line: string) => void;
}

/** One round: a fresh store, 1 API + `workers` worker processes, `messages` messages. */
async function round(opts: RoundOptions): Promise<Row> {
  const { db: DB, messages: MESSAGES, threads: THREADS, workers, redisUrl } = opts;
  const progress = opts.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-scale-out-'));
  const database = await createTestDatabase(dir, DB);
  const streamKey = `scale_out_${workers}`;
  const events = new EventReader(redisUrl, streamKey);
  let group: ProcessGroup | undefined;
  try {
    progress(`${workers} worker(s): starting 1 API + ${workers} worker processes on ${DB}`);
    group = await startProcessGroup({
      workers,
      env: {
        DATABASE_URL: database.url,
        REDIS_URL: redisUrl,
        REDIS_STREAM_KEY: streamKey,
        OPENAI_BASE_URL: opts.llmUrl,
        ADMIN_PASSWORD: 'bench',
        LOG_LEVEL: 'warn',
      },
    });

    const accepted = new Set<string>();
    let answered = 0;
    let sent = false;
    const pids = [group.api, ...group.workers].map((p) => p.proc.pid);
    const cpuBefore = cpuSnapshot(pids);
    const first = Date.now();
    const sending = postThreadedMessages({
      baseUrl: group.api.baseUrl,
      messages: MESSAGES,
      threads: THREADS,
      concurrency: POST_CONCURRENCY,
      threadPrefix: `scale-${workers}`,
      onAnswer: (posted) => {
        answered += 1;
        if (posted.status === 202 && posted.runId) accepted.add(posted.runId);
      },
    }).then((posted) => {
      sent = true;
      return posted;
    });

    // Follow the stream: each run's first terminal event, read once.
    const ended = new Map<string, StreamEntry>();
    let read = 0;
    const absorb = (all: StreamEntry[]) => {
      for (; read < all.length; read++) {
        const entry = all[read] as StreamEntry;
        if (isTerminal(entry.type) && !ended.has(entry.runId)) ended.set(entry.runId, entry);
      }
    };
    const done = () => sent && [...accepted].every((id) => ended.has(id));
    const deadline = first + ROUND_TIMEOUT_MS;
    while (!done() && Date.now() < deadline) {
      const until = Math.min(Date.now() + PROGRESS_EVERY_MS, deadline);
      await events
        .waitFor(
          (all) => {
            absorb(all);
            return done() || Date.now() >= until;
          },
          'progress',
          until - Date.now() + 1000,
        )
        .catch(() => {}); // waitFor's own deadline: report progress and go on
      progress(
        `${workers} worker(s): ${answered}/${MESSAGES} posted, ${ended.size}/${MESSAGES} runs ended`,
      );
    }
    const cpuAfter = cpuSnapshot(pids);
    const posted = await sending;

    const mine = [...accepted].map((id) => ended.get(id)).filter((e) => e !== undefined);
    const last = Math.max(...mine.map((e) => Date.parse(e.occurredAt)));
    return {
      workers,
      accepted: posted.filter((p) => p.status === 202).length,
      ended: mine.length,
      failed: mine.filter((e) => e.type === 'agent.run.failed').length,
      seconds: mine.length > 0 ? (last - first) / 1000 : Number.NaN,
      cpu: cpuPerRun(cpuBefore, cpuAfter, Math.max(mine.length, 1)),
    };
  } finally {
    await group?.stop();
    await events.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs/s with 1 API and 1 worker process on `db`: one round as the CLI runs it, on a private
 * Redis of its own unless `redisUrl` is given (then it must be one nothing else uses: the
 * round's stream key is its own, but it is not flushed). Throws if the round did not end every
 * run, or any run failed. For bench/run.ts's P6 (PostgreSQL ÷ SQLite).
 */
export async function oneWorkerRate(opts: {
  db: Dialect;
  messages: number;
  threads: number;
  redisUrl?: string;
}): Promise<{ rate: number; cpu: CpuPerRun }> {
  const redis = opts.redisUrl ? undefined : await PrivateRedis.start();
  const llm = await startFakeLlm({ quiet: true }); // the echo, at once
  try {
    const row = await round({
      db: opts.db,
      messages: opts.messages,
      threads: opts.threads,
      workers: 1,
      redisUrl: opts.redisUrl ?? (redis as PrivateRedis).url,
      llmUrl: llm.url,
    });
    if (row.ended < opts.messages || row.failed > 0) {
      throw new Error(
        `scale-out on ${opts.db}: ${row.accepted} accepted, ${row.ended} ended, ${row.failed} failed of ${opts.messages}`,
      );
    }
    return { rate: row.ended / row.seconds, cpu: row.cpu };
  } finally {
    await llm.stop();
    await redis?.stop();
  }
}

/** `CpuPerRun` as one table cell: API · workers · database server · machine. */
export const formatCpu = (cpu: CpuPerRun) =>
  [cpu.api, cpu.workers, cpu.database, cpu.machine]
    .map((us) => Math.round(us).toLocaleString('en-US'))
    .join(' · ');

if (import.meta.main) await main();

async function main() {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite' },
      messages: { type: 'string', default: '500' },
      threads: { type: 'string', default: '50' },
      workers: { type: 'string', default: DEFAULT_WORKER_COUNTS.join(',') },
    },
  });
  const DB = values.db;
  if (DB !== 'sqlite' && DB !== 'postgres') {
    console.error(`--db must be sqlite or postgres, got "${DB}"`);
    process.exit(2);
  }
  const MESSAGES = Number(values.messages);
  const THREADS = Number(values.threads);
  if (!Number.isInteger(MESSAGES) || MESSAGES < 1 || !Number.isInteger(THREADS) || THREADS < 1) {
    console.error('--messages and --threads must be positive integers');
    process.exit(2);
  }
  const WORKER_COUNTS = values.workers.split(',').map(Number);
  if (WORKER_COUNTS.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`--workers must be a list of positive integers, got "${values.workers}"`);
    process.exit(2);
  }
  const t0 = Date.now();
  const progress = (line: string) =>
    console.log(`[scale-out ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}`);

  const redis = await PrivateRedis.start();
  const llm = await startFakeLlm({ quiet: true }); // the echo, at once
  const admin = new Redis(redis.url);
  admin.on('error', () => {});
  const rows: Row[] = [];
  let failure: unknown;
  try {
    console.log(
      `agent-run scale-out: ${MESSAGES} messages over ${THREADS} threads, ${DB}, ` +
        `${navigator.hardwareConcurrency} cores, Bun ${Bun.version}, instant model, ` +
        'WORKER_CONCURRENCY default (256) per worker\n',
    );
    for (const workers of WORKER_COUNTS) {
      rows.push(
        await round({
          db: DB,
          messages: MESSAGES,
          threads: THREADS,
          workers,
          redisUrl: redis.url,
          llmUrl: llm.url,
          progress,
        }),
      );
      await admin.flushall();
    }
  } catch (error) {
    failure = error;
  } finally {
    admin.disconnect();
    await llm.stop();
    await redis.stop();
  }

  const fmt = (n: number, digits: number) =>
    Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
  const base = rows[0] ? rows[0].ended / rows[0].seconds : Number.NaN;
  console.log(
    '\n| workers | messages | seconds | runs/s | vs 1 worker | CPU µs a run: API · workers · database server · machine |\n| --- | --- | --- | --- | --- | --- |',
  );
  for (const row of rows) {
    const rate = row.ended / row.seconds;
    const note =
      row.ended < MESSAGES || row.failed > 0
        ? ` (${row.accepted} accepted, ${row.ended} ended, ${row.failed} failed)`
        : '';
    console.log(
      `| ${row.workers} | ${row.ended}${note} | ${fmt(row.seconds, 2)} | ${fmt(rate, 0)} | ` +
        `${fmt(rate / base, 2)} × | ${formatCpu(row.cpu)} |`,
    );
  }
  const incomplete = rows.some((r) => r.ended < MESSAGES || r.failed > 0);
  if (failure) console.error('\nscale-out stopped:', failure);
  console.log(
    `\n${incomplete || failure ? 'INCOMPLETE' : 'done'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  process.exit(incomplete || failure ? 1 : 0);
}
