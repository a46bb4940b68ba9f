/**
 * How long a dead process's runs wait before they run again, with the DEFAULT recovery settings
 * (no RUN_LOCK_MS, RUN_STALLED_CHECK_MS): targets R1 and R2 of the performance issue.
 *
 * - **R1 recovery**: `bun src/main.ts` (both roles in one process), N runs of a 5 s model in
 *   flight, SIGKILLed, started again: from the restart (the spawn, its boot included) until
 *   every run's next attempt has started. Target ≤ 10 s.
 * - **R2 takeover**: one API process and two worker processes, all N runs held by one worker,
 *   which is SIGKILLed: from the kill until every run's next attempt has started on the other.
 *   Target ≤ 15 s.
 *
 * "Started" is the attempt's `agent.run.started` (its `occurredAt`: the moment the attempt was
 * claimed in the store). Every setting is the default (WORKER_CONCURRENCY's 256 holds all N runs
 * in flight at once). After each figure the runs are waited for, and the bench fails loudly
 * unless every run completed with exactly one terminal event.
 *
 * `recoveryFigures` is what `bun run bench` calls, on its private Redis (flushed after each
 * figure: the BullMQ prefix is fixed, so the queue is shared by whatever runs on it);
 * `bun bench/recovery.ts [--quick]` runs it alone on a private Redis of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { EventReader, isTerminal, type StreamEntry } from '../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../harness/fake-llm';
import { PrivateRedis } from '../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../harness/processes';

import type { Row } from './load';

const MODEL_DELAY_MS = 5000;
const R1_TARGET_S = 10;
const R2_TARGET_S = 15;
/** Far beyond any target: reaching one is a failure of the bench, not a figure. */
const WAIT_MS = 180_000;

interface Figure {
  dir: string;
  redisUrl: string;
  llm: FakeLlm;
  runs: number;
  stream: string;
}

export async function recoveryFigures(opts: {
  quick: boolean;
  redisUrl: string;
  dir: string;
}): Promise<Row[]> {
  const runs = opts.quick ? 20 : 100;
  const llm = await startFakeLlm({ quiet: true });
  llm.setDefault({ kind: 'reply', delayMs: MODEL_DELAY_MS });
  const admin = new Redis(opts.redisUrl);
  admin.on('error', () => {});
  const base = { dir: opts.dir, redisUrl: opts.redisUrl, llm, runs };
  try {
    const rows: Row[] = [];
    const r1 = await restartFigure({ ...base, stream: `recovery_r1_${Date.now()}` });
    await admin.flushall();
    rows.push({
      figure: `R1 recovery: one process (both roles), ${runs} runs of a 5 s model in flight, SIGKILLed and started again (up in ${seconds(r1.bootMs)}) → every run started again`,
      value: seconds(r1.recoveryMs),
      target: `≤ ${R1_TARGET_S} s`,
      pass: r1.recoveryMs <= R1_TARGET_S * 1000,
    });
    llm.reset();
    llm.setDefault({ kind: 'reply', delayMs: MODEL_DELAY_MS });
    const r2 = await takeoverFigure({ ...base, stream: `recovery_r2_${Date.now()}` });
    await admin.flushall();
    rows.push({
      figure: `R2 takeover: 1 API + 2 worker processes, the worker holding ${runs} runs SIGKILLed → every run started on the other`,
      value: seconds(r2.recoveryMs),
      target: `≤ ${R2_TARGET_S} s`,
      pass: r2.recoveryMs <= R2_TARGET_S * 1000,
    });
    return rows;
  } finally {
    admin.disconnect();
    await llm.stop();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function envOf(f: Figure, name: string): Record<string, string> {
  return {
    DATABASE_URL: `file:${join(f.dir, `recovery-${name}-${Date.now()}.db`)}`,
    REDIS_URL: f.redisUrl,
    REDIS_STREAM_KEY: f.stream,
    OPENAI_BASE_URL: f.llm.url,
    ADMIN_PASSWORD: 'bench',
    LOG_LEVEL: 'warn',
  };
}

/** R1: the one process killed and started again. */
async function restartFigure(f: Figure) {
  const env = envOf(f, 'r1');
  const events = new EventReader(f.redisUrl, f.stream);
  const children: ServerProcess[] = [];
  try {
    const first = await spawnServer('both', env);
    children.push(first);
    const runIds = await postRuns(first.baseUrl, f.runs);
    await startedTimes(events, runIds, 1);
    await first.kill('SIGKILL');
    const restartedAt = Date.now();
    children.push(await spawnServer('both', env));
    const bootMs = Date.now() - restartedAt;
    const again = await startedTimes(events, runIds, 2);
    await expectEachEndedOnce(events, runIds);
    return { bootMs, recoveryMs: Math.max(...again) - restartedAt };
  } finally {
    for (const child of children) await child.kill('SIGKILL');
    await events.close();
  }
}

/** R2: the worker process holding every run killed; the other takes them over. */
async function takeoverFigure(f: Figure) {
  const env = envOf(f, 'r2');
  const events = new EventReader(f.redisUrl, f.stream);
  const children: ServerProcess[] = [];
  try {
    const api = await spawnServer('api', env);
    children.push(api);
    const holder = await spawnServer('worker', env);
    children.push(holder);
    const runIds = await postRuns(api.baseUrl, f.runs);
    await startedTimes(events, runIds, 1);
    // Started once every run is held: the holder has them all.
    children.push(await spawnServer('worker', env));
    await holder.kill('SIGKILL');
    const killedAt = Date.now();
    const again = await startedTimes(events, runIds, 2);
    await expectEachEndedOnce(events, runIds);
    return { recoveryMs: Math.max(...again) - killedAt };
  } finally {
    for (const child of children) await child.kill('SIGKILL');
    await events.close();
  }
}

/** Each its own thread, so none waits for another's turn. */
async function postRuns(baseUrl: string, count: number): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) => postMessage(baseUrl, { content: `recover ${i}` })),
  );
  return answers.map(({ status, body }) => {
    if (status !== 202) throw new Error(`a message was refused: ${status} ${JSON.stringify(body)}`);
    return body.runId as string;
  });
}

/** Waits until every run has started `attempt` times; when its attempt-th start was claimed. */
async function startedTimes(events: EventReader, runIds: string[], attempt: number) {
  const starts = (all: StreamEntry[], runId: string) => {
    const seen = new Set<string>();
    return all.filter(
      (e) =>
        e.runId === runId &&
        e.type === 'agent.run.started' &&
        !seen.has(e.eventId) &&
        seen.add(e.eventId),
    );
  };
  const all = await events.waitFor(
    (entries) => runIds.every((id) => starts(entries, id).length >= attempt),
    `every run to have started ${attempt} time(s)`,
    WAIT_MS,
  );
  return runIds.map((id) => Date.parse(starts(all, id)[attempt - 1]?.occurredAt ?? ''));
}

/** The figure only counts if the recovery lost nothing and doubled nothing. */
async function expectEachEndedOnce(events: EventReader, runIds: string[]) {
  await events.waitFor(
    (all) => runIds.every((id) => all.some((e) => e.runId === id && isTerminal(e.type))),
    'every run to end',
    WAIT_MS,
  );
  for (const runId of runIds) {
    const ends = events.distinctForRun(runId).filter((e) => isTerminal(e.type));
    if (ends.length !== 1 || ends[0]?.type !== 'agent.run.completed') {
      throw new Error(`run ${runId} ended ${ends.map((e) => e.type).join(', ') || 'never'}`);
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-recovery-'));
  const redis = await PrivateRedis.start();
  try {
    const rows = await recoveryFigures({ quick: values.quick === true, redisUrl: redis.url, dir });
    console.log('| figure | value | target | result |\n| --- | --- | --- | --- |');
    for (const r of rows) {
      const result = r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL';
      console.log(`| ${r.figure} | ${r.value} | ${r.target ?? ''} | ${result} |`);
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
