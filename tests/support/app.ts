import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createWorker } from '../../jobs/worker';
import { createApp } from '../../src/app';
import { type Config, clusterKeys, loadConfig } from '../../src/config';
import { createDeps } from '../../src/deps';
import { createStreamConsumer } from '../../src/events/stream-consumer';
import { createLogger, type Logger } from '../../src/logger';
import { createReconciler } from '../../src/recovery/reconciler';
import { createRedisClient, type RedisClient, type RedisTarget } from '../../src/redis/client';
import { createTestDatabase } from './database';
import { deleteKeysMatching, REDIS_URL } from './redis';

export interface StreamEntry {
  id: string;
  type: string;
  eventId: string;
  runId: string;
  threadId: string;
  occurredAt: string;
  /** Only on agent.run.rejected. */
  requestId?: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect payloads freely
  payload: any;
}

let counter = 0;

/**
 * The real app and (optionally) the real worker, isolated for one test file: a fresh store
 * (tests/support/database.ts), its own stream key and BullMQ prefix, silent logs. Only the model server is fake.
 * `env: {REDIS_CLUSTER_NODES}` runs it against a Redis Cluster, keys hash-tagged as in production.
 */
export async function startTestApp(
  opts: {
    env?: Record<string, string>;
    worker?: boolean;
    redisUrl?: string;
    waitForRedis?: boolean;
    logger?: Logger;
    /** Also read the stream as the worker role does (consumer group ingress). */
    consumer?: boolean;
    /** Also serve over real HTTP on a free port (browser and end-to-end tests). */
    listen?: boolean;
  } = {},
) {
  const id = `${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-test-'));
  const database = await createTestDatabase(dir);
  const config: Config = loadConfig({
    DATABASE_URL: database.url,
    REDIS_URL: opts.redisUrl ?? REDIS_URL,
    REDIS_STREAM_KEY: `test:${id}:events`,
    REDIS_CONSUMER_NAME: `test-${id}`,
    RUN_BACKOFF_MS: '20',
    ...opts.env,
  });
  config.redis.queuePrefix = `test-${id}`;
  // A Cluster needs the prefix in the stream key's slot, as loadConfig does for `bull`.
  if (config.redis.clusterNodes) {
    Object.assign(config.redis, clusterKeys(config.redis.streamKey, config.redis.queuePrefix));
  }
  const deps = await createDeps(config, { logger: opts.logger ?? createLogger('silent') });
  if (opts.waitForRedis !== false && deps.redis.status !== 'ready') {
    await new Promise((resolve) => deps.redis.once('ready', resolve));
  }
  const app = await createApp(deps);
  const server = opts.listen ? app.listen({ port: 0, hostname: '127.0.0.1' }).server : undefined;
  deps.publisher.startRelay();
  const reconciler = createReconciler(deps);
  reconciler.start();
  const worker = opts.worker === false ? undefined : createWorker(deps);
  const consumer = opts.consumer ? createStreamConsumer(deps) : undefined;
  await consumer?.start();
  const events = new EventReader(config.redis, config.redis.streamKey);

  return {
    config,
    deps,
    app,
    worker,
    reconciler,
    events,
    baseUrl: server ? `http://127.0.0.1:${server.port}` : undefined,
    request(path: string, init?: RequestInit) {
      return app.handle(new Request(`http://localhost${path}`, init));
    },
    async post(body: unknown, headers: Record<string, string> = {}) {
      const response = await app.handle(
        new Request('http://localhost/api/chat/messages', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
      );
      // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
      return { status: response.status, body: (await response.json()) as any };
    },
    async get(path: string) {
      const response = await app.handle(new Request(`http://localhost${path}`));
      // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
      return { status: response.status, body: (await response.json()) as any };
    },
    async close() {
      if (server) await app.stop();
      await reconciler.stop();
      await consumer?.stop();
      await worker?.close();
      await deps.close();
      await events.close();
      const cleanup = createRedisClient(config.redis, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      cleanup.on('error', () => {});
      try {
        await cleanup.connect();
        // The queue's keys, the stream and the runs' own streams (<stream key>:run:<runId>).
        await deleteKeysMatching(cleanup, `${config.redis.queuePrefix}:*`);
        await deleteKeysMatching(cleanup, `${config.redis.streamKey}*`);
      } catch {
        // a private Redis may be gone already
      } finally {
        cleanup.disconnect();
      }
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof startTestApp>>;

/**
 * Reads the event stream with blocking XREADs and waits for a condition on what arrived:
 * tests wait for events, never for fixed sleeps.
 */
export class EventReader {
  readonly entries: StreamEntry[] = [];
  private lastId = '0';
  private readonly redis: RedisClient;

  /** `redis`: a URL, or the app's config.redis (one Redis or a Cluster). */
  constructor(
    redis: string | RedisTarget,
    private readonly key: string,
  ) {
    const target = typeof redis === 'string' ? { url: redis, clusterNodes: null } : redis;
    this.redis = createRedisClient(target, { maxRetriesPerRequest: null });
    this.redis.on('error', () => {});
  }

  async waitFor(
    condition: (entries: StreamEntry[]) => boolean,
    what = 'the expected events',
    timeoutMs = 20_000,
  ): Promise<StreamEntry[]> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.entries)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.entries.map((e) => `${e.type}(${e.runId.slice(-6)})`).join(', ');
        throw new Error(`timed out waiting for ${what}; saw: ${seen || 'nothing'}`);
      }
      const result = await this.redis
        .xread('COUNT', 1000, 'BLOCK', Math.min(left, 1000), 'STREAMS', this.key, this.lastId)
        .catch(() => null);
      for (const [, items] of result ?? []) {
        for (const [id, fields] of items) {
          const entry: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2)
            entry[fields[i] as string] = fields[i + 1] as string;
          this.entries.push({
            ...(entry as unknown as StreamEntry),
            id,
            payload: parseOr(entry.payload),
          });
          this.lastId = id;
        }
      }
    }
    return this.entries;
  }

  /** Waits until `runId` has a terminal event and returns that run's events. */
  async waitForTerminal(runId: string, timeoutMs?: number): Promise<StreamEntry[]> {
    await this.waitFor(
      (all) => all.some((e) => e.runId === runId && isTerminal(e.type)),
      `a terminal event of ${runId}`,
      timeoutMs,
    );
    return this.forRun(runId);
  }

  forRun(runId: string): StreamEntry[] {
    return this.entries.filter((e) => e.runId === runId);
  }

  async close() {
    this.redis.disconnect();
  }
}

export const isTerminal = (type: string) =>
  type === 'agent.run.completed' || type === 'agent.run.failed';

/** A real pino logger at debug level whose lines are kept in memory, for tests that read logs. */
export function captureLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(line.trimEnd()) },
  );
  return { logger, lines };
}

/** A producer's entry may carry anything as payload: keep what is not JSON as text. */
function parseOr(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? 'null');
  } catch {
    return text;
  }
}

/**
 * Polls `read` until `done` holds or the time is up, and returns the last value read: for state
 * that settles just after the event a test waited for (an outbox row is marked delivered after
 * its stream entry is written, so a reader can see the event a moment before the mark).
 */
export async function waitForValue<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await read();
  }
  return value;
}

/**
 * Waits for a job to reach a state. A run's terminal event is written before BullMQ moves its
 * job (the processor announces, then returns or throws), so a test that saw the event may still
 * find the job active for a moment.
 */
export async function waitForJobState(
  queue: { getJobState(id: string): Promise<string> },
  jobId: string,
  state: string,
  timeoutMs = 10_000,
): Promise<string> {
  return waitForValue(
    () => queue.getJobState(jobId),
    (current) => current === state,
    timeoutMs,
  );
}
