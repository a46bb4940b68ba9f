import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { EventReader } from '../../harness/event-reader';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import type { App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';
import { createRedisClient } from '../../src/redis/client';
import { startRoles } from '../../src/roles';
import { deleteKeysMatching, REDIS_URL } from './redis';

let counter = 0;

/**
 * The real server, started as production starts it (`startRoles`), isolated for one test file: a
 * fresh store (harness/test-database.ts), its own stream key and BullMQ prefix, silent logs.
 * Only the model server is fake. `worker: false` starts the api role alone; otherwise the worker
 * role runs too (the BullMQ worker and the stream consumer). `env: {REDIS_CLUSTER_NODES}` runs it
 * against a Redis Cluster, keys hash-tagged as in production.
 */
export async function startTestApp(
  opts: {
    env?: Record<string, string>;
    worker?: boolean;
    redisUrl?: string;
    waitForRedis?: boolean;
    logger?: Logger;
    /** Also serve over real HTTP on a free port (browser and end-to-end tests). */
    listen?: boolean;
    /** MCP reconnect backoff, for tests of a server that comes back. */
    toolRetry?: { initialMs: number; maxMs: number };
  } = {},
) {
  const id = `${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-test-'));
  const database = await createTestDatabase(dir);
  const config = loadConfig(
    {
      DATABASE_URL: database.url,
      REDIS_URL: opts.redisUrl ?? REDIS_URL,
      REDIS_STREAM_KEY: `test:${id}:events`,
      REDIS_CONSUMER_NAME: `test-${id}`,
      RUN_BACKOFF_MS: '20',
      ...opts.env,
    },
    { queuePrefix: `test-${id}` },
  );
  const running = await startRoles(config, {
    roles: opts.worker === false ? ['api'] : ['api', 'worker'],
    listen: opts.listen ? { port: 0, hostname: '127.0.0.1' } : undefined,
    overrides: { logger: opts.logger ?? createLogger('silent'), toolRetry: opts.toolRetry },
  });
  const { deps, worker, reconciler, retention } = running;
  const app = running.app as App;
  const sql = await openSql(config.databaseUrl);
  if (opts.waitForRedis !== false && deps.redis.status !== 'ready') {
    await new Promise((resolve) => deps.redis.once('ready', resolve));
  }
  const events = new EventReader(config.redis, config.redis.streamKey);

  return {
    config,
    deps,
    sql,
    app,
    worker,
    reconciler,
    retention,
    events,
    baseUrl: running.url,
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
    /** Any request; the body parsed as JSON when there is one (a 204 has none). */
    async call(path: string, init?: RequestInit) {
      const response = await app.handle(new Request(`http://localhost${path}`, init));
      const text = await response.text();
      // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
    },
    async get(path: string) {
      const response = await app.handle(new Request(`http://localhost${path}`));
      // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
      return { status: response.status, body: (await response.json()) as any };
    },
    async close() {
      await running.stop();
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
