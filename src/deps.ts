import { openStore } from '../db/client';
import type { Store } from '../db/store';
import { createRunQueue, type RunQueue } from '../jobs/catalog';
import type { Config } from './config';
import { createPublisher, type Publisher } from './events/outbox-relay';
import type { StreamTarget } from './events/stream-writer';
import { createFeedReader, type FeedReader } from './feeds/feed-reader';
import type { Llm } from './llm/llm';
import { createLlm } from './llm/openai';
import { createLogger, type Logger } from './logger';
import { createMetrics, instrumentLlm, type Metrics } from './metrics/metrics';
import {
  createRedisClient,
  describeRedisTarget,
  isConnectionError,
  type RedisClient,
} from './redis/client';
import { type CancelSignals, createCancelSignals } from './runs/cancel-signals';
import { settleWithin } from './timeouts';
import { createToolRegistry, type ToolRegistry } from './tools/service';
import { createWebhookSender, type WebhookSender } from './webhooks/sender';

export interface Deps {
  config: Config;
  logger: Logger;
  /** The store: SQLite or PostgreSQL, by DATABASE_URL; only db/ knows which. */
  db: Store;
  /** Our own connection: stream writes and readiness. The queue has its own (`createDeps`). */
  redis: RedisClient;
  queue: RunQueue;
  llm: Llm;
  publisher: Publisher;
  metrics: Metrics;
  /** The main stream and the run streams' settings. */
  stream: StreamTarget;
  /** The one reader behind every SSE feed of this process. */
  feeds: FeedReader;
  /** Reaches the worker that holds a run, in whichever process, when it is cancelled. */
  cancels: CancelSignals;
  /** The server tools of TOOLS_FILE; its MCP servers connect at `startRoles`. */
  tools: ToolRegistry;
  /** Sends the webhook deliveries of every process's events; started by `startRoles`. */
  webhooks: WebhookSender;
  close(): Promise<void>;
}

/** The only place clients are built. Tests pass `overrides` rather than mocking modules. */
export async function createDeps(
  config: Config,
  overrides: Partial<Pick<Deps, 'logger' | 'llm'>> & {
    /** MCP reconnect backoff (0.5 s doubling to 30 s by default): tests wait less. */
    toolRetry?: { initialMs: number; maxMs: number };
  } = {},
): Promise<Deps> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const db = await openStore(config.databaseUrl, {
    poolSize: config.databasePoolSize,
    webhooks: {
      url: config.webhooks.url,
      events: config.webhooks.events,
      perRun: config.webhooks.allowedUrls.length > 0,
    },
  });
  const webhooks = createWebhookSender({ db, config, logger, metrics });
  const redis = createRedis(config, logger);
  // A producer should fail fast while Redis is down: the outbox keeps the job until it is back.
  // BullMQ leaves a connection it is given open: close() below closes it.
  const queueRedis = createRedisClient(config.redis, { enableOfflineQueue: false });
  queueRedis.on('error', () => {}); // reported once by our own client (createRedis)
  const queue = createRunQueue(config, queueRedis);
  // Connection errors are reported once by our own client (createRedis); the queue's would repeat.
  queue.on('error', (error) => {
    if (!isConnectionError(error)) logger.error({ err: error }, 'queue error');
  });
  const stream = {
    key: config.redis.streamKey,
    maxLen: config.redis.streamMaxLen,
    runFeedTtlS: config.stream.runFeedTtlS,
  };
  // A committed event with deliveries: this process sends them now, not at its next poll.
  // Without a secret there is no sender, and nothing to tell.
  const webhookEvents = new Set<string>(config.webhooks.secret ? config.webhooks.events : []);
  const publisher = createPublisher({
    db,
    redis,
    queueRedis,
    queue,
    stream,
    logger,
    committed:
      webhookEvents.size === 0
        ? undefined
        : (row) => {
            if (webhookEvents.has(row.type)) webhooks.kick();
          },
  });
  // Whichever of the two connections comes back last, its pass finds both ready.
  for (const connection of [redis, queueRedis]) {
    connection.on('ready', () => void publisher.relayPending().catch(() => {}));
  }
  const feeds = createFeedReader({ redis: config.redis, logger });
  const cancels = createCancelSignals({
    redis: config.redis,
    publisher: redis,
    channel: `${config.redis.streamKey}:cancel`,
    logger,
    cancelling: async (runIds) => {
      const runs = await Promise.all(runIds.map((runId) => db.getRun(runId)));
      return runs.flatMap((run) => (run?.status === 'cancelling' ? [run.id] : []));
    },
  });
  const tools = createToolRegistry({
    servers: config.tools.servers,
    maxOutputChars: config.tools.maxOutputChars,
    logger,
    metrics,
    retry: overrides.toolRetry,
  });
  return {
    config,
    logger,
    db,
    redis,
    queue,
    llm: instrumentLlm(overrides.llm ?? createLlm(config), metrics),
    publisher,
    metrics,
    stream,
    feeds,
    cancels,
    tools,
    webhooks,
    async close() {
      await webhooks.stop();
      await tools.close();
      await publisher.stopRelay();
      await feeds.close();
      await cancels.close();
      // BullMQ's close waits for its connection; with Redis gone that would be forever.
      await settleWithin(queue.close(), 2000);
      queueRedis.disconnect();
      redis.disconnect();
      await db.close();
    },
  };
}

function createRedis(config: Config, logger: Logger): RedisClient {
  const redis = createRedisClient(config.redis, {
    // Fail fast while disconnected: the outbox holds what could not be sent.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  let down = false;
  redis.on('error', (error) => {
    if (down) return;
    down = true;
    logger.warn(
      { error: error.message, redis: describeRedisTarget(config.redis) },
      'Redis is not answering: messages are still accepted and kept in the outbox. ' +
        'Start Redis with `bun run redis:up` (Docker) or `redis-server`.',
    );
  });
  redis.on('ready', () => {
    if (down) logger.info('Redis is back: delivering the outbox');
    down = false;
  });
  return redis;
}
