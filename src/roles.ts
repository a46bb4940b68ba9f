import { createWorker } from '../jobs/worker';
import { type App, createApp } from './app';
import { chatStreamCommands } from './chat/stream-commands';
import type { Config } from './config';
import { createDeps, type Deps } from './deps';
import { createStreamConsumer } from './events/stream-consumer';
import { createReconciler } from './recovery/reconciler';
import { runStreamCommands } from './runs/stream-commands';
import { createRetentionSweeper } from './threads/retention';
import { settleWithin } from './timeouts';

/** `api` serves HTTP; `worker` runs the BullMQ worker and reads the stream as the consumer group. */
export type Role = 'api' | 'worker';
export const ROLES: readonly Role[] = ['api', 'worker'];

/** How long a worker may take to hand its jobs back when Redis is gone and none can finish. */
const FORCED_CLOSE_MS = 2000;

export interface RunningRoles {
  deps: Deps;
  /** With the api role. */
  app: App | undefined;
  /** With the api role and `listen`: where it answers. */
  url: string | undefined;
  worker: ReturnType<typeof createWorker> | undefined;
  consumer: ReturnType<typeof createStreamConsumer> | undefined;
  reconciler: ReturnType<typeof createReconciler>;
  /** Deletes threads past THREAD_RETENTION_DAYS (idle without it). */
  retention: ReturnType<typeof createRetentionSweeper>;
  /**
   * Stops everything, in order: no new requests, no new sweeps or stream reads, then the worker
   * finishes its in-flight runs (or, with Redis down, hands them back at once: BullMQ's stalled
   * check gives them to another worker), then the connections close.
   */
  stop(): Promise<void>;
}

/**
 * The one start-up path: `bun src/main.ts` and the test app both come through here, so the tests
 * start what production runs. Every process runs the outbox relay, the reconciler, the thread
 * retention sweeper and the webhook sender besides its roles. `listen` serves the app over HTTP (tests without it call
 * `app.handle`).
 */
export async function startRoles(
  config: Config,
  opts: {
    roles: readonly Role[];
    listen?: { port: number; hostname?: string };
    /** Tests bring their own logger and model client (see `createDeps`). */
    overrides?: Parameters<typeof createDeps>[1];
  },
): Promise<RunningRoles> {
  const deps = await createDeps(config, opts.overrides);
  // Before the worker takes runs and the API lists tools: each MCP server's first answer (or not).
  await deps.tools.start();
  deps.publisher.startRelay();
  const reconciler = createReconciler(deps);
  reconciler.start();
  const retention = createRetentionSweeper(deps);
  retention.start();
  deps.webhooks.start();
  const worker = opts.roles.includes('worker') ? createWorker(deps) : undefined;
  const consumer = worker ? createConsumer(deps) : undefined;
  await consumer?.start();
  const app = opts.roles.includes('api') ? await createApp(deps) : undefined;
  const server = opts.listen
    ? app?.listen({
        ...opts.listen,
        // Bun cuts off far larger bodies itself; below this our own check answers 413 as JSON.
        maxRequestBodySize: config.http.maxBodyBytes + 1024 * 1024,
      }).server
    : undefined;
  const url = server ? `http://${opts.listen?.hostname ?? 'localhost'}:${server.port}` : undefined;

  return {
    deps,
    app,
    url,
    worker,
    consumer,
    reconciler,
    retention,
    async stop() {
      if (server) await app?.stop();
      await reconciler.stop();
      await retention.stop();
      await consumer?.stop();
      if (worker) {
        if (deps.redis.status === 'ready') await worker.close();
        else await settleWithin(worker.close(true), FORCED_CLOSE_MS);
      }
      await deps.close();
    },
  };
}

/** The stream consumer with every command the service carries out for producers. */
export function createConsumer(deps: Deps) {
  return createStreamConsumer(deps, { ...chatStreamCommands(deps), ...runStreamCommands(deps) });
}
