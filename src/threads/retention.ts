import type { Config } from '../config';
import { deleteThread, type ThreadDeps } from './service';

/** Threads looked up at a time. */
const BATCH = 100;
/** A sweep stops after this many full batches; the next one goes on (other timers get a turn). */
const MAX_BATCHES = 50;
const INTERVAL_MS = 5 * 60_000;
/** The first sweep: soon after start, not in the middle of it. */
const FIRST_SWEEP_MS = 10_000;
const DAY_MS = 24 * 3600 * 1000;

/**
 * THREAD_RETENTION_DAYS: threads not updated for that long are deleted, each exactly as
 * `DELETE /api/chat/threads/:threadId` deletes it (`deleteThread`: runs cancelled and announced,
 * `agent.thread.deleted`, streams and jobs removed). Every process sweeps; two sweeping at once
 * may pick the same threads, and the store deletes each once (the second finds it gone). Without
 * the setting, `start` does nothing. `sweep()` runs one sweep now (tests).
 */
export function createRetentionSweeper(deps: ThreadDeps & { config: Pick<Config, 'threads'> }) {
  const { retentionDays } = deps.config.threads;
  const logger = deps.logger.child({ component: 'thread-retention' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = true;
  /** Set by `stop`: a sweep in progress ends after the thread it is deleting. */
  let stopping = false;

  /** One sweep: deletes what expired before `now` − the retention; counts what it deleted. */
  async function sweep(
    now = Date.now(),
  ): Promise<{ deleted: number; gone: number; failed: number }> {
    const counts = { deleted: 0, gone: 0, failed: 0 };
    if (retentionDays === null) return counts;
    const before = new Date(now - retentionDays * DAY_MS);
    for (let batch = 0; batch < MAX_BATCHES && !stopping; batch++) {
      const ids = await deps.db.listExpiredThreads(before, BATCH);
      let progress = false;
      for (const threadId of ids) {
        if (stopping) break;
        try {
          if (await deleteThread(deps, threadId)) counts.deleted++;
          else counts.gone++; // another process (or a DELETE) was first
          progress = true;
        } catch (error) {
          // One thread that cannot be deleted now must not hold up the others.
          counts.failed++;
          logger.warn({ err: error, threadId }, 'could not delete an expired thread; next sweep');
        }
      }
      // A short batch is the last; a full one that moved nothing would come back the same.
      if (ids.length < BATCH || !progress) break;
    }
    if (counts.deleted > 0 || counts.gone > 0 || counts.failed > 0) {
      logger.info(
        { ...counts, retentionDays, before: before.toISOString() },
        'deleted threads past THREAD_RETENTION_DAYS',
      );
    }
    return counts;
  }

  function schedule(ms: number) {
    if (stopped) return;
    timer = setTimeout(async () => {
      running = sweep().catch((error) => {
        logger.warn({ err: error }, 'thread retention sweep failed; will try again');
      });
      await running;
      schedule(INTERVAL_MS);
    }, ms);
  }

  return {
    sweep,
    start() {
      if (retentionDays === null) return;
      stopped = false;
      stopping = false;
      schedule(FIRST_SWEEP_MS);
    },
    async stop() {
      stopped = true;
      stopping = true;
      clearTimeout(timer);
      await running;
    },
  };
}
