import { enqueueRun } from '../../jobs/catalog';
import type { Deps } from '../deps';
import { failRun } from '../runs/service';

/** Idempotency keys are kept at least 24 hours (the API's promise); a little more, to be safe. */
export const IDEMPOTENCY_TTL_MS = 25 * 3600 * 1000;
const LIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
const BATCH = 1000;

/**
 * No run stays unfinished forever. If Redis loses its data (a restart without persistence, a
 * failover) the jobs of accepted runs are gone while the database still says queued/running.
 * Each sweep looks at every thread's head run (the one that must have a live job); a head whose
 * job failed for good without making the run terminal is failed `run_aborted` at once, and a head
 * with no live job for RUN_STALE_MS is enqueued again (job id = run id keeps that idempotent).
 * The same loop purges expired idempotency keys.
 */
export function createReconciler(
  deps: Pick<Deps, 'config' | 'db' | 'queue' | 'publisher' | 'metrics' | 'logger'>,
) {
  const { config, db, queue, logger } = deps;
  const staleMs = config.run.staleMs;
  const intervalMs = Math.max(500, Math.min(staleMs / 2, 60_000));
  const missingSince = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;

  async function sweep(now = Date.now()): Promise<void> {
    const heads = await db.listThreadHeads(BATCH);
    const seen = new Set<string>();
    for (const run of heads) {
      seen.add(run.id);
      const state = await queue.getJobState(run.id);
      if (LIVE.has(state)) {
        missingSince.delete(run.id);
        continue;
      }
      const log = logger.child({ runId: run.id, threadId: run.threadId });
      // A job failed for good while its run is unfinished is conclusive at once: the run job
      // makes its run terminal before its job fails, so this job was given up outside it (it
      // stalled too often, or a bug). Nothing will run it again.
      if (state === 'failed') {
        missingSince.delete(run.id);
        await failRun(deps, run, run.attempts, {
          code: 'run_aborted',
          message: 'the job failed without finishing the run',
        });
        log.warn('reconciler: failed a run whose job had failed');
        continue;
      }
      const since = missingSince.get(run.id) ?? now;
      missingSince.set(run.id, since);
      if (now - since < staleMs) continue;
      missingSince.delete(run.id);
      if (state === 'completed') await (await queue.getJob(run.id))?.remove();
      await enqueueRun(queue, run.id, run.threadId);
      log.warn({ jobState: state, staleMs }, 'reconciler: run had no live job; enqueued it again');
    }
    for (const id of missingSince.keys()) if (!seen.has(id)) missingSince.delete(id);
    const purged = await db.purgeIdempotencyKeys(new Date(now - IDEMPOTENCY_TTL_MS));
    if (purged > 0) logger.info({ purged }, 'purged expired idempotency keys');
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(async () => {
      running = sweep().catch((error) => {
        logger.debug({ err: error }, 'reconciler sweep failed; will try again');
      });
      await running;
      schedule();
    }, intervalMs);
  }

  return {
    sweep,
    start() {
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
