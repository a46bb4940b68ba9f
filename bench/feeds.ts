/**
 * P7, live feeds: many SSE clients watching streaming runs, on one server process (both roles).
 * Every client must get every event of its run once, in order, through the terminal event; the
 * figures are the server's CPU per delivered event and its RSS. `bun bench/feeds.ts [--quick]`
 * runs it alone on a private Redis and fake model; `bun run bench` calls `feedFigures`.
 *
 * Each run pauses before its reply: the message offers a client tool and tells the fake model
 * (`[[tool:hold]]`) to call it, so the run waits in `requires_action` while its watchers connect
 * and catch up. Then the bench answers the tool, and the fake streams the reply one word every
 * `PACE_MS` (`[[pace:MS]]`), so the runs are live while they are watched. After the runs end,
 * one more client per run replays the finished run's whole history: the reference each
 * watcher's events are held to.
 *
 * Passes on one server: a short warm-up (not counted); the runs with one watcher each (what the
 * runs cost alone); the runs with `perRun` watchers each (the figures); the runs with one early
 * watcher and `late` more joining while the reply streams (catch-up handing over to live).
 * The fake model must be on its default echo (`llm.reset()` after another phase's setDefault).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeLlm } from '../harness/fake-llm';
import { PrivateRedis } from '../harness/private-redis';
import { type ServerProcess, spawnServer } from '../harness/processes';
import type { Row } from './load';
import { cpuSeconds } from './load';
import { type SeenEvent, SseWatcher } from './sse-client';

/** Between two words of a streamed reply: slower than the delta writer's 50 ms batching. */
const PACE_MS = 60;
/** Feeds opened at once while connecting, so the listen backlog never overflows. */
const CONNECT_BATCH = 100;
const TERMINAL = new Set(['agent.run.completed', 'agent.run.failed', 'agent.run.cancelled']);

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
const rssMb = (server: ServerProcess) => {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};

async function api(base: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the bench reads answers freely
  const json = (await response.json()) as any;
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** The run, once it waits in `requires_action` for the client tool: its tool call's id. */
async function heldCall(base: string, runId: string): Promise<string> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const run = await api(base, `/api/chat/runs/${runId}?wait=10`);
    if (run.status === 'requires_action') return run.pendingAction.toolCalls[0].toolCallId;
    if (['completed', 'failed', 'cancelled'].includes(run.status)) {
      throw new Error(
        `run ${runId} ended (${run.status}) before it asked for its tool: is the fake model on its default echo (llm.reset())?`,
      );
    }
  }
  throw new Error(`run ${runId} never reached requires_action`);
}

/** One watcher's events against the reference: what it missed, saw twice or out of order. */
function check(events: SeenEvent[], reference: SeenEvent[], index: Map<string, number>) {
  const seen = new Set<string>();
  let duplicated = 0;
  let outOfOrder = 0;
  let unknown = 0;
  let garbled = 0;
  let last = -1;
  for (const event of events) {
    const at = index.get(event.id);
    if (at === undefined) {
      unknown++;
      continue;
    }
    if (seen.has(event.id)) {
      duplicated++;
      continue;
    }
    seen.add(event.id);
    if (at < last) outOfOrder++;
    last = Math.max(last, at);
    const expected = reference[at] as SeenEvent;
    if (expected.type !== event.type || expected.dataLength !== event.dataLength) garbled++;
  }
  const terminal = events.at(-1);
  return {
    missed: reference.length - seen.size,
    duplicated,
    outOfOrder,
    unknown,
    garbled,
    gotTerminal: terminal !== undefined && TERMINAL.has(terminal.type),
  };
}

/**
 * One pass: `runs` runs, each held in `requires_action` while its `perRun` watchers connect and
 * catch up, then released to stream a `words`-word reply, while `late` more watchers of each run
 * join, spread over the reply; every watcher held to the run's replay. `open` collects the
 * watchers, so the caller can close them whatever happens.
 */
async function watchRuns(
  server: ServerProcess,
  pass: { runs: number; perRun: number; words: number; late?: number },
  open: SseWatcher[],
) {
  const base = server.baseUrl;
  const host = '127.0.0.1';
  const feedPath = (runId: string) => `/api/chat/runs/${runId}/events`;
  // The tool's answer is what the fake echoes back, word by word: the reply's length.
  const output = Array.from({ length: pass.words }, (_, i) => `word${i}`).join(' ');
  const runIds: string[] = [];
  for (let i = 0; i < pass.runs; i++) {
    const accepted = await api(base, '/api/chat/messages', {
      content: `Watch run ${i} [[tool:hold]] [[pace:${PACE_MS}]]`,
      clientTools: [
        { name: 'hold', description: 'Waits for the bench.', parameters: { type: 'object' } },
      ],
    });
    runIds.push(accepted.runId);
  }
  const calls = await Promise.all(runIds.map((runId) => heldCall(base, runId)));

  // Every watcher connected and caught up (it has the run's requires_action) before any reply.
  const byRun = runIds.map((runId) =>
    Array.from({ length: pass.perRun }, () => new SseWatcher(host, server.port, feedPath(runId))),
  );
  const all = byRun.flat();
  const lateByRun = runIds.map((): SseWatcher[] => []);
  for (let i = 0; i < all.length; i += CONNECT_BATCH) {
    const batch = all.slice(i, i + CONNECT_BATCH);
    open.push(...batch);
    await Promise.all(batch.map((w) => w.open()));
  }
  const caughtUp = await Promise.all(
    all.map((w) =>
      w.until((x) => x.events.some((e) => e.type === 'agent.run.requires_action'), 60_000),
    ),
  );
  const notCaughtUp = caughtUp.filter((ok) => !ok).length;
  const rssConnected = rssMb(server);

  let rssPeak = rssConnected;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssMb(server));
  }, 100);
  const cpuStart = cpuSeconds(server);
  const started = Date.now();
  try {
    await Promise.all(
      runIds.map((runId, i) =>
        api(base, `/api/chat/runs/${runId}/tool-outputs`, {
          outputs: [{ toolCallId: calls[i], output }],
        }),
      ),
    );
    // Late joiners: spread over the first three quarters of the reply's expected length.
    const late = pass.late ?? 0;
    await Promise.all(
      runIds.flatMap((runId, i) =>
        Array.from({ length: late }, async (_, k) => {
          await Bun.sleep(((k + 1) / (late + 1)) * pass.words * PACE_MS * 0.75);
          const w = new SseWatcher(host, server.port, feedPath(runId));
          open.push(w);
          (lateByRun[i] as SseWatcher[]).push(w);
          all.push(w);
          await w.open();
        }),
      ),
    );
    await Promise.all(all.map((w) => w.until((x) => x.ended, 180_000)));
  } finally {
    clearInterval(sampler);
  }
  const seconds = (Date.now() - started) / 1000;
  const cpu = cpuSeconds(server) - cpuStart;
  rssPeak = Math.max(rssPeak, rssMb(server));
  for (const w of all) w.close();
  await Promise.all(all.map((w) => w.until((x) => x.closed, 10_000)));
  const rssAfter = rssMb(server);

  // The reference: the finished run's whole history, replayed by one more client.
  const early = tally();
  const joined = tally();
  let delivered = 0;
  let referenceEvents = 0;
  let deltas = 0;
  for (const [i, runId] of runIds.entries()) {
    const replay = new SseWatcher(host, server.port, feedPath(runId));
    open.push(replay);
    await replay.open();
    await replay.until((x) => x.ended, 30_000);
    replay.close();
    const reference = replay.events;
    if (!TERMINAL.has(reference.at(-1)?.type ?? '')) {
      throw new Error(`run ${runId}: its replay has no terminal event (${reference.length})`);
    }
    referenceEvents += reference.length;
    deltas += reference.filter((e) => e.type === 'agent.run.delta').length;
    const index = new Map(reference.map((e, at) => [e.id, at]));
    for (const [group, watchers] of [
      [early, byRun[i]],
      [joined, lateByRun[i]],
    ] as const) {
      for (const w of watchers ?? []) {
        delivered += w.events.length;
        group.add(check(w.events, reference, index), w.ended);
      }
    }
  }
  return {
    clients: early.clients,
    seconds,
    cpu,
    delivered,
    expected: referenceEvents * (pass.perRun + (pass.late ?? 0)),
    referenceEvents,
    deltas,
    totals: early.totals,
    withTerminal: early.withTerminal,
    notCaughtUp,
    clean: early.clean() && notCaughtUp === 0,
    late: joined,
    rss: { connected: rssConnected, peak: rssPeak, after: rssAfter },
  };
}

/** Sums watchers' checks: what they missed, saw twice or out of order, and who saw the end. */
function tally() {
  const totals = { missed: 0, duplicated: 0, outOfOrder: 0, unknown: 0, garbled: 0 };
  let clients = 0;
  let withTerminal = 0;
  return {
    totals,
    get clients() {
      return clients;
    },
    get withTerminal() {
      return withTerminal;
    },
    add(result: ReturnType<typeof check>, ended: boolean) {
      clients++;
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result[key];
      if (result.gotTerminal && ended) withTerminal++;
    },
    clean: () => Object.values(totals).every((n) => n === 0) && withTerminal === clients,
  };
}

export async function feedFigures(opts: {
  quick: boolean;
  redisUrl: string;
  llmUrl: string;
  dir: string;
}): Promise<Row[]> {
  const S = opts.quick
    ? { runs: 4, perRun: 50, words: 40, late: 10 }
    : { runs: 20, perRun: 50, words: 100, late: 10 };
  const server = await spawnServer('both', {
    DATABASE_URL: `file:${join(opts.dir, `feeds-${Date.now()}.db`)}`,
    REDIS_URL: opts.redisUrl,
    REDIS_STREAM_KEY: `feeds_bench_${Date.now()}`,
    OPENAI_BASE_URL: opts.llmUrl,
    ADMIN_PASSWORD: 'bench',
    LOG_LEVEL: 'warn',
    WORKER_CONCURRENCY: String(Math.max(16, S.runs * 2)),
  });
  const open: SseWatcher[] = [];
  try {
    const rssIdle = rssMb(server);
    // A short pass to warm the server up (JIT, connections, statements), not counted; then the
    // same runs with one watcher each: what the runs cost without the crowd, so the difference
    // is what the other watchers cost.
    await watchRuns(server, { runs: 4, perRun: 5, words: 20, late: 2 }, open);
    const one = await watchRuns(server, { ...S, perRun: 1, late: 0 }, open);
    const p = await watchRuns(server, { ...S, late: 0 }, open);
    // Then watchers that join while the replies stream: each catches up from the run's stream
    // while the shared reader delivers, and must hand over from one to the other seamlessly.
    const joiners = await watchRuns(server, { ...S, perRun: 1, late: S.late }, open);
    const extraEvents = p.delivered - one.delivered;
    const feedCpu = ((p.cpu - one.cpu) * 1e6) / Math.max(extraEvents, 1);
    return [
      {
        figure: `P7 feeds: ${fmt(p.clients)} SSE clients on ${S.runs} streaming runs (${S.perRun} a run, connected before the reply), reply streamed for`,
        value: `${fmt(p.seconds, 1)} s`,
      },
      {
        figure: `P7 events delivered (${fmt(p.referenceEvents / S.runs, 1)} a run, ${fmt(p.deltas / S.runs, 1)} of them deltas)`,
        value: fmt(p.delivered),
        ratio: `${(p.delivered / p.expected).toFixed(3)} × expected`,
      },
      {
        figure: `P7 missed · duplicated · out of order (unknown ids ${p.totals.unknown}, frames unlike the replay's ${p.totals.garbled})`,
        value: `${p.totals.missed} · ${p.totals.duplicated} · ${p.totals.outOfOrder}`,
        target: '0 · 0 · 0',
        pass: p.clean && one.clean,
      },
      {
        figure: `P7 clients that got the terminal event and the end of the feed${p.notCaughtUp ? ` (${p.notCaughtUp} never caught up)` : ''}`,
        value: `${fmt(p.withTerminal)}/${fmt(p.clients)}`,
        pass: p.withTerminal === p.clients,
      },
      {
        figure: `P7 late joiners: ${fmt(joiners.late.clients)} more clients (${S.late} a run) connecting while the replies stream: missed · duplicated · out of order (unknown ${joiners.late.totals.unknown}, unlike the replay's ${joiners.late.totals.garbled}), ${fmt(joiners.late.withTerminal)} got the end`,
        value: `${joiners.late.totals.missed} · ${joiners.late.totals.duplicated} · ${joiners.late.totals.outOfOrder}`,
        target: '0 · 0 · 0',
        pass: joiners.late.clean() && joiners.clean,
      },
      {
        figure: 'P7 server CPU per delivered event, the runs themselves included',
        value: `${fmt((p.cpu * 1e6) / Math.max(p.delivered, 1), 1)} µs`,
        ratio: `${fmt(p.cpu / p.seconds, 2)} cores busy`,
      },
      {
        figure: `P7 server CPU per event for watchers 2…${S.perRun} of a run (vs the same runs with 1 watcher: ${fmt((one.cpu * 1e6) / Math.max(one.delivered, 1))} µs an event)`,
        value: `${fmt(feedCpu, 1)} µs`,
      },
      {
        figure: 'P7 server RSS: idle → clients connected → peak → clients gone',
        value: `${fmt(rssIdle)} → ${fmt(p.rss.connected)} → ${fmt(p.rss.peak)} → ${fmt(p.rss.after)} MB`,
        ratio: `${fmt(((p.rss.connected - one.rss.after) * 1024) / p.clients, 1)} KB a client`,
      },
    ];
  } finally {
    for (const w of open) w.close();
    await server.kill('SIGKILL');
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-feeds-'));
  const redis = await PrivateRedis.start();
  const llm = await startFakeLlm({ quiet: true });
  try {
    console.log(
      `agent-run bench P7 feeds${values.quick ? ' --quick' : ''}: ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}\n`,
    );
    const rows = await feedFigures({
      quick: values.quick === true,
      redisUrl: redis.url,
      llmUrl: llm.url,
      dir,
    });
    console.log('| figure | value | ratio | target | result |\n| --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const result = r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL';
      console.log(
        `| ${r.figure} | ${r.value} | ${r.ratio ?? ''} | ${r.target ?? ''} | ${result} |`,
      );
    }
    process.exitCode = rows.some((r) => r.pass === false) ? 1 : 0;
  } finally {
    await llm.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
