import { isPostgresUrl } from '../db/path';
import { type Config, ConfigError, loadConfig } from './config';
import type { Logger } from './logger';
import { redactUrl } from './redact';
import { describeRedisTarget } from './redis/client';
import { ROLES, startRoles } from './roles';

/** In-flight runs get this long to finish on SIGTERM before the process exits anyway. */
const SHUTDOWN_LIMIT_MS = 90_000;

/** `bun src/main.ts [api|worker]`: both roles by default (the embedded mode). */
async function main() {
  const arg = process.argv[2];
  const roles = ROLES.filter((role) => arg === undefined || role === arg);
  if (roles.length === 0) {
    console.error(`unknown role "${arg}": use api, worker or nothing for both`);
    process.exit(2);
  }

  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const running = await startRoles(config, { roles, listen: { port: config.port } });
  const { logger } = running.deps;
  if (config.openai.apiKey === undefined) {
    logger.warn(
      'no model server configured (OPENAI_API_KEY or OPENAI_BASE_URL): runs will fail with ' +
        'llm_not_configured. For a local try: `bun run fake-llm`, then OPENAI_BASE_URL=http://127.0.0.1:4010/v1',
    );
  }
  logger.info(
    {
      roles,
      url: running.url,
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
  if (running.url) announceSurfaces(config, running.url, logger);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new requests, finishing in-flight runs');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS);
    force.unref();
    await running.stop();
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
    `\n  Start here: ${base}/\n  API docs:   ${base}/swagger\n  Bull Board: ${base}/admin/queues  (user ${config.admin.user}, ${password})\n  Metrics:    ${base}/metrics (same login)\n`,
  );
}

await main();
