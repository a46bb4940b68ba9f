import { Job, type JobsOptions, Queue, UnrecoverableError } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { Config } from '../src/config';
import type { RedisClient } from '../src/redis/client';

/** The one queue of runs. */
export const RUN_QUEUE = 'agent-runs';

/** Job data is the run id only: everything else is read from the database when the job runs. */
export interface RunJobData {
  runId: string;
}

export type RunQueue = Queue<RunJobData>;

const RUN_ID = /^run_[a-z0-9]{24}$/;

/** The most lines a run job's log keeps (the newest). */
export const KEEP_LOG_LINES = 1000;

export function parseRunJobData(data: unknown): RunJobData {
  const runId = (data as { runId?: unknown } | null)?.runId;
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) {
    throw new UnrecoverableError(`malformed run job data: ${JSON.stringify(data)}`);
  }
  return { runId };
}

/**
 * Attempts and backoff come from config; finished jobs are kept long enough to inspect and
 * retry in Bull Board, and bounded in age and count so Redis does not grow forever. A job's log
 * (its runs' story, jobs/run-report.ts) keeps its newest KEEP_LOG_LINES lines: an attempt writes
 * one a model call and one a tool call, so a run retried from the board many times stays bounded.
 */
export function runJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.run.attempts,
    backoff: { type: 'exponential', delay: config.run.backoffMs },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
    keepLogs: KEEP_LOG_LINES,
  };
}

/**
 * The queue over `connection` (from `createRedisClient`: one Redis or a Cluster). BullMQ leaves a
 * connection it is given open, so its owner closes it after `queue.close()`. In a Cluster the
 * prefix carries the hash tag (src/redis/cluster-keys.ts), so BullMQ's multi-key scripts run.
 */
export function createRunQueue(config: Config, connection: RedisClient): RunQueue {
  return new Queue<RunJobData>(RUN_QUEUE, {
    connection,
    prefix: config.redis.queuePrefix,
    defaultJobOptions: runJobOptions(config),
  });
}

/**
 * A run's job. The job id is the run id, so a second add (the relay re-delivering, the
 * reconciler) is a no-op while the job exists. The name carries the thread for Bull Board.
 */
export function runJob(runId: string, threadId: string) {
  return { name: `thread ${threadId}`, data: { runId }, opts: { jobId: runId } };
}

/**
 * A pipeline on the queue's own connection, for commands that must go in the same round trip as
 * run jobs (`queueRunJobs`): with one connection, Redis runs them in the order queued.
 */
export async function queuePipeline(queue: RunQueue): Promise<ChainableCommander> {
  const client = await queue.backend.client;
  return client.pipeline() as unknown as ChainableCommander;
}

/**
 * Queues run jobs on a pipeline from `queuePipeline`, as `queue.addBulk` adds them (the queue's
 * default options under each job's own, the same script), so that they ride in one round trip
 * with the commands queued before them. Resolves once the pipeline ran, with the job ids;
 * rejects as `addBulk` would.
 */
export function queueRunJobs(
  queue: RunQueue,
  pipeline: ChainableCommander,
  jobs: ReturnType<typeof runJob>[],
): Promise<string[]> {
  return Promise.all(
    jobs.map((job) => {
      const opts = { ...queue.jobsOpts, ...job.opts, jobId: job.opts.jobId };
      const instance = new Job<RunJobData>(queue, job.name, job.data, opts, opts.jobId);
      const json = instance.asJSON();
      // Protected in the types, and what `Job.createBulk` runs on every job it adds.
      (instance as unknown as { validateOptions(json: unknown): void }).validateOptions(json);
      return queue.backend.addJobToTransaction(
        pipeline as unknown as Parameters<RunQueue['backend']['addJobToTransaction']>[0],
        json,
        opts.jobId,
        { parentKey: undefined, parentDependenciesKey: '' },
      );
    }),
  );
}

export async function enqueueRun(queue: RunQueue, runId: string, threadId: string) {
  const job = runJob(runId, threadId);
  return queue.add(job.name, job.data, job.opts);
}
