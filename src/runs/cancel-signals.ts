import type { Logger } from '../logger';
import { createRedisClient, type RedisClient, type RedisTarget } from '../redis/client';

/** The reason an attempt's signal is aborted with: a cancel, not a timeout or a shutdown. */
export class RunCancelledError extends Error {
  override name = 'RunCancelledError';
}

export interface CancelSignals {
  /** Tells every process to stop these runs now (best effort: see `createCancelSignals`). */
  publish(runIds: string[]): Promise<void>;
  /**
   * A signal that aborts when `runId` is cancelled, whichever process accepted the cancel.
   * `release()` when the attempt is over.
   */
  watch(runId: string): { signal: AbortSignal; release(): void };
  close(): Promise<void>;
}

/**
 * Reaches the process whose worker holds a run, whichever that is: a cancel accepted by any
 * process is published on one Redis channel, and each process that runs attempts subscribes with
 * one connection of its own, opened on its first `watch`. Pub/sub is fire and forget, so the
 * signal only makes a cancel prompt; the database makes it certain (a `cancelling` run ends
 * cancelled when its attempt ends, whatever the model answered). When the subscriber connects
 * again after losing Redis, the runs it watches are looked up (`cancelling`), so a cancel sent
 * while it was away still stops them.
 */
export function createCancelSignals(opts: {
  redis: RedisTarget;
  /** Publishes: the process's own client. */
  publisher: RedisClient;
  channel: string;
  logger: Logger;
  /** Which of these runs are being cancelled, by the database. */
  cancelling: (runIds: string[]) => Promise<string[]>;
}): CancelSignals {
  const watched = new Map<string, Set<AbortController>>();
  let subscriber: RedisClient | undefined;

  const abort = (runId: string) => {
    for (const controller of watched.get(runId) ?? []) {
      controller.abort(new RunCancelledError(`run ${runId} was cancelled`));
    }
  };

  function subscribe() {
    // A subscribed connection can do nothing else, and must not give up on its commands.
    const client = createRedisClient(opts.redis, { maxRetriesPerRequest: null });
    client.on('error', () => {}); // reported once by the process's own client (deps.ts)
    client.on('message', (_channel: string, runId: string) => abort(runId));
    let connectedBefore = false;
    client.on('ready', () => {
      if (connectedBefore) void recheck();
      connectedBefore = true;
    });
    // Once subscribed, look up what is being cancelled already: a cancel sent while the first
    // attempt was claimed came before the subscription.
    void client
      .subscribe(opts.channel)
      .then(recheck)
      .catch((error: unknown) => {
        opts.logger.warn({ err: error }, 'cancel signals: could not subscribe; cancels will wait');
      });
    return client;
  }

  async function recheck() {
    try {
      for (const runId of await opts.cancelling([...watched.keys()])) abort(runId);
    } catch (error) {
      opts.logger.debug({ err: error }, 'cancel signals: recheck failed');
    }
  }

  return {
    async publish(runIds) {
      for (const runId of runIds) {
        try {
          await opts.publisher.publish(opts.channel, runId);
        } catch (error) {
          // Redis is away: the run still ends cancelled when its attempt ends (see above).
          opts.logger.warn(
            { err: error, runId },
            'cancel signal not sent; the run ends at its finish',
          );
        }
      }
    },
    watch(runId) {
      subscriber ??= subscribe();
      const controller = new AbortController();
      let set = watched.get(runId);
      if (!set) {
        set = new Set();
        watched.set(runId, set);
      }
      set.add(controller);
      return {
        signal: controller.signal,
        release() {
          set.delete(controller);
          if (set.size === 0 && watched.get(runId) === set) watched.delete(runId);
        },
      };
    },
    async close() {
      subscriber?.disconnect();
      subscriber = undefined;
    },
  };
}
