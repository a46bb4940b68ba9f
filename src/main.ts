import { isPostgresUrl } from '../db/path';
import { createWorker } from '../jobs/worker';
import { createApp } from './app';
import { type Config, ConfigError, loadConfig } from './config';
import { createDeps } from './deps';
import { createStreamConsumer } from './events/stream-consumer';
import type { Logger } from './logger';
import { createReconciler } from './recovery/reconciler';
import { redactUrl } from './redact';
import { describeRedisTarget } from './redis/client';
import { settleWithin } from './timeouts';

type Role = 'api' | 'worker';

/** `bun src/main.ts [api|worker]`: both roles by default (the embedded mode). */
async function main() {
  const arg = process.argv[2];
  const roles: Role[] = arg === 'api' || arg === 'worker' ? [arg] : ['api', 'worker'];
  if (arg && roles.length !== 1) {
    console.error(`unknown role "${arg}": use api, worker or nothing for both`);
    process.exit(2);
  }

  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const deps = await createDeps(config);
  const { logger } = deps;
  if (config.openai.apiKey === undefined) {
    logger.warn(
      'no model server configured (OPENAI_API_KEY or OPENAI_BASE_URL): runs will fail with ' +
        'llm_not_configured. For a local try: `bun run fake-llm`, then OPENAI_BASE_URL=http://127.0.0.1:4010/v1',
    );
  }

  deps.publisher.startRelay();
  const reconciler = createReconciler(deps);
  reconciler.start();
  const worker = roles.includes('worker') ? createWorker(deps) : undefined;
  const consumer = worker ? createStreamConsumer(deps) : undefined;
  await consumer?.start();
  const app = roles.includes('api')
    ? (await createApp(deps)).listen({
        port: config.port,
        // Bun cuts off far larger bodies itself; below this our own check answers 413 as JSON.
        maxRequestBodySize: config.http.maxBodyBytes + 1024 * 1024,
      })
    : undefined;

  logger.info(
    {
      roles,
      url: app?.server ? `http://localhost:${app.server.port}` : undefined,
      database: isPostgresUrl(config.databaseUrl)
        ? redactUrl(config.databaseUrl)
        : config.databaseUrl,
      redis: describeRedisTarget(config.redis),
      streamKey: config.redis.streamKey,
      model: config.chat.defaultModel,
      llm: config.openai.baseUrl ?? (config.openai.apiKey ? 'api.openai.com' : 'not configured'),
    },
    'agent-run server started',
  );

  if (app?.server) announceSurfaces(config, `http://localhost:${app.server.port}`, logger);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new requests, finishing in-flight runs');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, 90_000);
    force.unref();
    await app?.stop();
    await reconciler.stop();
    await consumer?.stop();
    if (worker) {
      // Finish in-flight runs; with Redis down nothing can finish, so hand them back at once
      // (BullMQ's stalled check gives them to another worker).
      if (deps.redis.status === 'ready') await worker.close();
      else await settleWithin(worker.close(true), 2000);
    }
    await deps.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** Where to look, once at start-up. A generated admin password is printed here and only here. */
function announceSurfaces(config: Config, base: string, logger: Logger) {
  if (config.apiKeys.length === 0) {
    logger.warn('API_KEYS is empty: /api is open to anyone who can reach this port');
  }
  const password = config.admin.passwordGenerated
    ? `password ${config.admin.password} (generated for this run; set ADMIN_PASSWORD to fix one)`
    : 'password from ADMIN_PASSWORD';
  // Plain stdout, not the JSON log: the one place a generated password is shown.
  console.log(
    `\n  API docs:   ${base}/swagger\n  Bull Board: ${base}/admin/queues  (user ${config.admin.user}, ${password})\n  Metrics:    ${base}/metrics (same login)\n`,
  );
}

await main();
