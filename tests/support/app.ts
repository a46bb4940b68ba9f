import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { EventReader } from '../../harness/event-reader';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { createWorker } from '../../jobs/worker';
import { createApp } from '../../src/app';
import { type Config, clusterKeys, loadConfig } from '../../src/config';
import { createDeps } from '../../src/deps';
import { createStreamConsumer } from '../../src/events/stream-consumer';
import { createLogger, type Logger } from '../../src/logger';
import { createReconciler } from '../../src/recovery/reconciler';
import { createRedisClient } from '../../src/redis/client';
import { deleteKeysMatching, REDIS_URL } from './redis';

let counter = 0;

/**
 * The real app and (optionally) the real worker, isolated for one test file: a fresh store
 * (harness/test-database.ts), its own stream key and BullMQ prefix, silent logs. Only the model server is fake.
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
  const sql = await openSql(config.databaseUrl);
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
    sql,
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
      await sql.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof startTestApp>>;

/** A real pino logger at debug level whose lines are kept in memory, for tests that read logs. */
export function captureLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(line.trimEnd()) },
  );
  return { logger, lines };
}
