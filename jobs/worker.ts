import { Worker } from 'bullmq';
import { isFinishedStatus } from '../db/types';
import { createRedisClient, isConnectionError } from '../src/redis/client';
import { failRun } from '../src/runs/service';
import { createRunProcessor, type RunJobDeps, type RunJobResult } from './agent-run';
import { RUN_QUEUE, type RunJobData } from './catalog';
import { startLiveness } from './liveness';
import { describeFailure } from './run-report';

/**
 * The BullMQ worker over the runs queue. It gets a connection of its own (one Redis or a
 * Cluster, `createRedisClient`), which BullMQ uses as is and duplicates for its blocking fetch;
 * BullMQ closes the duplicate, and the worker's `closed` event closes ours, so `close()` releases
 * both. `close()` waits for in-flight runs to finish; a run cut off by a crash is picked up again
 * by BullMQ's stalled-job check.
 */
export function createWorker(deps: RunJobDeps) {
  const { config, logger } = deps;
  // BullMQ refuses a blocking connection that gives up on commands: no retry limit.
  const connection = createRedisClient(config.redis, { maxRetriesPerRequest: null });
  connection.on('error', () => {}); // BullMQ forwards them to the worker's `error` listener
  const worker = new Worker<RunJobData, RunJobResult>(RUN_QUEUE, createRunProcessor(deps), {
    connection,
    prefix: config.redis.queuePrefix,
    name: config.redis.consumerName,
    concurrency: config.run.workerConcurrency,
    // The lock is renewed every lockDuration/2 while the job runs, so a model call of
    // LLM_TIMEOUT_MS (a minute) never loses it; it only lapses when the worker is gone (or its
    // event loop is blocked for lockDuration). Then the stalled check, every stalledInterval,
    // hands the job to another worker: recovery within about lockDuration + stalledInterval.
    // That is the path for a process that is alive but stuck; a dead process's runs are taken
    // over in seconds by the liveness reaper (liveness.ts), whatever these say.
    lockDuration: config.run.lockMs,
    stalledInterval: config.run.stalledCheckMs,
    // A job recovered from two stalls is failed on the third rather than crashing workers
    // forever; its run ends `run_aborted` (the safety net below, or the reconciler's next sweep).
    maxStalledCount: 2,
    // No rate limit of our own, but a limiter must be configured for a manual one (a 429's
    // queue.rateLimit) to hold: without it a blocked fetch takes the job straight back.
    limiter: { max: 1_000_000_000, duration: 1000 },
  });

  const liveness = startLiveness(worker, {
    redis: deps.redis,
    target: { url: config.redis.url, clusterNodes: config.redis.clusterNodes },
    logger,
  });
  // After close: its runs have finished or been handed back, so its liveness key can go.
  worker.once('closed', () => {
    connection.disconnect();
    void liveness.stop();
  });
  // BullMQ does not stop a processor whose lock it failed to renew (the lock lapsed, or the
  // reaper released it: this process was taken for dead). The job is another attempt's now, so
  // this one is aborted: it stops its model and tool calls and writes nothing (agent-run.ts).
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds) {
      if (worker.cancelJob(jobId, 'job lock lost')) {
        logger.warn({ runId: jobId }, 'the run job lock was lost: this attempt stops');
      }
    }
  });
  worker.on('error', (error) => {
    if (!isConnectionError(error)) logger.error({ err: error }, 'worker error');
  });

  // Safety net: a job that BullMQ failed for good without the processor making the run
  // terminal (stalled too often, a bug) must still end in exactly one agent.run.failed.
  // The run job's own failures have made their run terminal before the job fails: the look at
  // the run below finds it finished. BullMQ's own (a job stalled too often) come as
  // UnrecoverableErrors too, so none is skipped by its type.
  worker.on('failed', async (job, error) => {
    if (!job) return;
    // The job's name carries its thread (catalog.ts), so every line names both ids.
    const ids = { runId: job.data.runId, threadId: job.name.replace(/^thread /, '') };
    try {
      if ((await job.getState()) !== 'failed') return;
      const run = await deps.db.getRun(job.data.runId);
      if (!run || isFinishedStatus(run.status)) return;
      const failure = {
        code: 'run_aborted' as const,
        message: `the job failed outside the run: ${error?.message ?? 'unknown error'}`,
      };
      await failRun(deps, run, run.attempts, failure);
      logger.warn({ ...ids, err: error }, 'run aborted: its job failed outside the run');
      // The last line of the job's story (jobs/run-report.ts); a lost line loses nothing else.
      await job.log(`failed: ${describeFailure(failure)}`).catch(() => {});
    } catch (netError) {
      logger.error({ ...ids, err: netError }, 'could not fail an aborted run');
    }
  });

  return worker;
}
