import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EventReader, isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { type ProcessGroup, type ServerProcess, startProcessGroup } from '../../harness/processes';
import { createTestDatabase } from '../../harness/test-database';
import { type PostedMessage, postThreadedMessages } from '../../harness/threaded-messages';
import { waitForValue } from '../../harness/wait';
import { RUN_QUEUE, type RunJobData } from '../../jobs/catalog';
import { loadConfig } from '../../src/config';
import { redisTestsEnabled } from '../support/redis';

const MESSAGES = 500;
const THREADS = 50;
const WORKERS = 3;
/** The kill comes once this many runs have completed: well into the load, far from its end. */
const KILL_AFTER_COMPLETED = 150;
/** Model calls the victim holds open when it is killed. */
const STALLED_CALLS = 2;
/** Deadlines for waits that should end in seconds; reaching one is a failure, not a figure. */
const WAIT_MS = 120_000;

interface RunView {
  id: string;
  threadId: string;
  status: string;
  startedAt: string | null;
  finishedAt: string | null;
  reply: { id: string; content: string } | null;
}
interface MessageView {
  id: string;
  runId: string | null;
  role: 'user' | 'assistant';
  content: string;
}

/**
 * Many processes, one truth: 1 API process and 3 worker processes (`bun src/main.ts api|worker`)
 * over one store (harness/test-database.ts: SQLite now, PostgreSQL with TEST_DATABASE=postgres)
 * and one Redis. 500 messages over 50 threads; one worker is SIGKILLed with runs in flight.
 * Judged from outside only: the event stream and the HTTP API.
 *
 * The Redis is a private redis-server: BullMQ's key prefix is not configurable by environment
 * (config.ts fixes it to `bull`), so processes on the shared Redis would share one queue with
 * every other run of this test.
 */
describe.skipIf(!redisTestsEnabled())('many processes, one truth', () => {
  let dir: string;
  let redis: PrivateRedis;
  /** One model server per worker, so the test knows which worker sent which model call. */
  let llms: FakeLlm[] = [];
  let database: { url: string; drop(): Promise<void> } | undefined;
  let events: EventReader;
  let queue: Queue<RunJobData> | undefined;
  let group: ProcessGroup | undefined;
  let reader: Redis | undefined;
  let streamKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-run-multi-'));
    redis = await PrivateRedis.start();
    llms = await Promise.all(Array.from({ length: WORKERS }, () => startFakeLlm({ quiet: true })));
    // A little model time, so runs are in flight on every worker.
    for (const llm of llms) llm.setDefault({ kind: 'reply', delayMs: 40 });
    database = await createTestDatabase(dir);
    streamKey = `multi:${process.pid}:${Date.now().toString(36)}:events`;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_STREAM_KEY: streamKey,
      ADMIN_PASSWORD: 'multi-test',
      LOG_LEVEL: 'warn',
      // A dead worker's lock lapses after 3 s and is looked for every 0.5 s, so its runs are
      // recovered in seconds (defaults: 30 s each). Long enough that a live worker on a loaded
      // 2-core box still renews its locks (every 1.5 s).
      RUN_LOCK_MS: '3000',
      RUN_STALLED_CHECK_MS: '500',
      RUN_BACKOFF_MS: '50',
    };
    // The queue as the processes see it, to see it drained at the end.
    queue = new Queue<RunJobData>(RUN_QUEUE, {
      connection: { host: '127.0.0.1', port: redis.port },
      prefix: loadConfig(env).redis.queuePrefix,
    });
    events = new EventReader(redis.url, streamKey);
    reader = new Redis(redis.url);
    group = await startProcessGroup({
      workers: WORKERS,
      env,
      workerEnv: (i) => ({ OPENAI_BASE_URL: (llms[i] as FakeLlm).url }),
    });
  }, WAIT_MS);

  afterAll(async () => {
    // Each step on its own, so one failing does not leave processes or files behind.
    const steps: (() => Promise<unknown> | undefined)[] = [
      () => group?.stop(10_000),
      () => queue?.close(),
      () => events?.close(),
      async () => reader?.disconnect(),
      () => Promise.all(llms.map((llm) => llm.stop())),
      () => database?.drop(),
      () => redis?.stop(),
    ];
    for (const step of steps) await Promise.resolve(step()).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }, WAIT_MS);

  test(
    '1 API + 3 workers, 500 messages over 50 threads, a worker SIGKILLed midway',
    async () => {
      if (!group || !queue || !reader) throw new Error('the process group did not start');
      const { api, workers } = group;
      const sending = postThreadedMessages({
        baseUrl: api.baseUrl,
        messages: MESSAGES,
        threads: THREADS,
        concurrency: 16,
        threadPrefix: `multi-${Date.now().toString(36)}`,
      });

      // Midway, make sure the victim has runs cut off for real: its model stops answering,
      // and once it holds calls open, SIGKILL. Those runs must be recovered by the others.
      await events.waitFor(
        (all) => all.filter((e) => e.type === 'agent.run.completed').length >= KILL_AFTER_COMPLETED,
        `${KILL_AFTER_COMPLETED} completed runs`,
        WAIT_MS,
      );
      const victim = workers[1] as ServerProcess;
      const victimLlm = llms[1] as FakeLlm;
      const answeredCalls = victimLlm.requests.length;
      victimLlm.setDefault({ kind: 'stall' });
      // Each held-open call is the one call in flight of a run on the victim: a reply call,
      // or the summary call of a run whose older messages leave the window. Either names its
      // thread (the messages we post are `message <turn> of <threadId>`).
      const held = (await victimLlm.waitForRequests(answeredCalls + STALLED_CALLS, WAIT_MS)).slice(
        answeredCalls,
      );
      expect(await victim.kill('SIGKILL')).not.toBe(0);

      const posted = await sending;
      expect(posted.filter((p) => p.status !== 202)).toEqual([]);
      const runIds = posted.map((p) => p.runId as string);
      expect(new Set(runIds).size).toBe(MESSAGES);

      // Every run ends; then the queue drains (nothing left to run twice) and the reader
      // catches up with the whole stream.
      await events.waitFor(
        (all) => {
          const ended = new Set(all.filter((e) => isTerminal(e.type)).map((e) => e.runId));
          return runIds.every((id) => ended.has(id));
        },
        `a terminal event for each of the ${MESSAGES} runs`,
        WAIT_MS,
      );
      const counts = await waitForValue(
        () => (queue as Queue<RunJobData>).getJobCounts('active', 'wait', 'delayed', 'prioritized'),
        (c) => Object.values(c).every((n) => n === 0),
        WAIT_MS,
      );
      expect(counts).toEqual({ active: 0, wait: 0, delayed: 0, prioritized: 0 });
      const streamLength = await reader.xlen(streamKey);
      await events.waitFor((all) => all.length >= streamLength, 'the whole stream', WAIT_MS);

      // The stream: exactly one terminal event per run (a relay re-delivery repeats the same
      // eventId, which consumers de-duplicate), and it is `completed`; none for unknown runs.
      const terminal = new Map<string, Map<string, string>>();
      for (const e of events.entries.filter((e) => isTerminal(e.type))) {
        const seen = terminal.get(e.runId) ?? new Map<string, string>();
        seen.set(e.eventId, e.type);
        terminal.set(e.runId, seen);
      }
      const wrongTerminal = runIds
        .map((id) => ({ runId: id, terminal: [...(terminal.get(id)?.values() ?? [])] }))
        .filter((r) => r.terminal.length !== 1 || r.terminal[0] !== 'agent.run.completed');
      expect(wrongTerminal).toEqual([]);
      expect([...terminal.keys()].filter((id) => !runIds.includes(id))).toEqual([]);

      // The runs the kill cut off started again on another worker (and, above, completed
      // once): on each thread that had a call held open, one run started twice.
      const cutOffThreads = held.map((request) => threadOfCall(request.body));
      const notRecovered = cutOffThreads.filter((threadId) => {
        const runs = posted.filter((p) => p.threadId === threadId).map((p) => p.runId as string);
        return !runs.some((runId) => {
          const started = events.forRun(runId).filter((e) => e.type === 'agent.run.started');
          return new Set(started.map((e) => e.eventId)).size >= 2;
        });
      });
      expect(notRecovered).toEqual([]);

      // The runs, through the API: all completed, each with the echo of its own message, and
      // within a thread one after the other in the order accepted: a run starts only after
      // the previous one finished. startedAt is the first attempt's start, so a recovered run's
      // interval covers its cut-off attempt too.
      const views = await mapLimit(posted, 16, (p) =>
        getJson<RunView>(api, `/api/chat/runs/${p.runId}`),
      );
      const notCompleted = views
        .map((run, i) => ({ run, posted: posted[i] as PostedMessage }))
        .filter(
          ({ run, posted }) =>
            run.status !== 'completed' ||
            !run.startedAt ||
            !run.finishedAt ||
            run.reply?.content !== `echo: ${posted.content}`,
        );
      expect(notCompleted).toEqual([]);
      const overlaps: string[] = [];
      for (const thread of threadsOf(posted)) {
        for (let turn = 1; turn < thread.length; turn++) {
          const before = views[(thread[turn - 1] as PostedMessage).index] as RunView;
          const after = views[(thread[turn] as PostedMessage).index] as RunView;
          const start = Date.parse(after.startedAt as string);
          if (start < Date.parse(before.finishedAt as string)) {
            overlaps.push(
              `${after.threadId}: ${after.id} started ${after.startedAt}, before ${before.id} ` +
                `(accepted earlier) finished ${before.finishedAt}`,
            );
          }
          if (Date.parse(after.finishedAt as string) < start)
            overlaps.push(`${after.id}: ends before it starts`);
        }
      }
      expect(overlaps).toEqual([]);

      // The threads, through the API: each user message followed by exactly one reply, its
      // own; nothing else. Ten messages posted per thread: twenty messages.
      const threads = threadsOf(posted);
      const pages = await mapLimit(threads, 16, (thread) =>
        getJson<{ messages: MessageView[]; hasMore: boolean }>(
          api,
          `/api/chat/threads/${(thread[0] as PostedMessage).threadId}/messages?limit=200`,
        ),
      );
      const wrongThreads = threads
        .map((thread, i) => {
          const page = pages[i] as { messages: MessageView[]; hasMore: boolean };
          const expected = thread.flatMap((p) => [
            { id: p.messageId, runId: p.runId, role: 'user', content: p.content },
            { runId: p.runId, role: 'assistant', content: `echo: ${p.content}` },
          ]);
          const actual = page.messages.map((m, k) =>
            k % 2 === 0
              ? { id: m.id, runId: m.runId, role: m.role, content: m.content }
              : { runId: m.runId, role: m.role, content: m.content },
          );
          return { threadId: thread[0]?.threadId, hasMore: page.hasMore, expected, actual };
        })
        .filter((t) => t.hasMore || !Bun.deepEquals(t.actual, t.expected));
      expect(wrongThreads).toEqual([]);
      expect(pages.every((p) => p.messages.length === (2 * MESSAGES) / THREADS)).toBe(true);
      // And the reply the run names is the one in the thread.
      const replyIds = new Set(
        pages.flatMap((p) => p.messages.filter((m) => m.role === 'assistant').map((m) => m.id)),
      );
      expect(views.filter((run) => !replyIds.has(run.reply?.id ?? ''))).toEqual([]);
    },
    WAIT_MS * 3,
  );
});

/** The thread a model call is for, from the `message <turn> of <threadId>` texts it carries. */
// biome-ignore lint/suspicious/noExplicitAny: a chat request body as the SDK sent it
function threadOfCall(body: any): string | undefined {
  const messages: { content?: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
  for (const message of messages) {
    const match = /message \d+ of (\S+)/.exec(String(message.content ?? ''));
    if (match) return match[1];
  }
  return undefined;
}

/** The posted messages grouped by thread, each thread's in the order accepted. */
function threadsOf(posted: PostedMessage[]): PostedMessage[][] {
  const byThread = new Map<string, PostedMessage[]>();
  for (const p of posted) byThread.set(p.threadId, [...(byThread.get(p.threadId) ?? []), p]);
  return [...byThread.values()].map((thread) => thread.sort((a, b) => a.turn - b.turn));
}

async function getJson<T>(server: ServerProcess, path: string): Promise<T> {
  const response = await fetch(`${server.baseUrl}${path}`);
  if (response.status !== 200)
    throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** `fn` over `items`, at most `limit` at a time; results in the items' order. */
async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
