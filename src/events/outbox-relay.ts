import type { Store } from '../../db/store';
import type { OutboxRow } from '../../db/types';
import { queuePipeline, queueRunJobs, type RunQueue, runJob } from '../../jobs/catalog';
import type { Logger } from '../logger';
import type { RedisClient } from '../redis/client';
import { withTimeout } from '../timeouts';
import type { EventType } from './event';
import { appendEvent, defineStreamCommands, type StreamTarget } from './stream-writer';

/**
 * How long the Redis round trip of a delivery (the XADDs and the jobs) may take before the rows
 * are left to the relay. A healthy Redis answers in milliseconds.
 */
const DELIVERY_TIMEOUT_MS = 2000;
/**
 * The relay leaves younger rows to the process that wrote them (its inline delivery, which gives
 * up within 2 × DELIVERY_TIMEOUT_MS), so two processes never deliver one row at the same time.
 */
const RELAY_GRACE_MS = 5000;
/**
 * A relay pass leases the rows it takes for this long, so the relays of other processes leave
 * them alone: well over the two Redis calls of a delivery and the mark.
 */
const RELAY_LEASE_MS = 15_000;
const RELAY_INTERVAL_MS = 1000;
const RELAY_BATCH = 200;

export interface Publisher {
  /**
   * Delivers one committed outbox row now; false when it is left for the relay. Rows handed in
   * during one turn of the event loop go out together: one pipeline of XADDs, one bulk add of
   * jobs, one update marking them delivered.
   */
  deliver(row: OutboxRow): Promise<boolean>;
  /** One relay pass: delivers pending rows in order. */
  relayPending(): Promise<number>;
  startRelay(): void;
  stopRelay(): Promise<void>;
}

export function createPublisher(deps: {
  db: Store;
  redis: RedisClient;
  /** The queue's own connection: a delivery needs it as much as ours. */
  queueRedis: RedisClient;
  queue: RunQueue;
  stream: StreamTarget;
  logger: Logger;
  /** Told of every committed row handed to `deliver`, before it goes out. */
  committed?: (row: OutboxRow) => void;
}): Publisher {
  const { db, redis, queueRedis, queue, stream, logger, committed } = deps;
  // The events go out on the queue's connection, in one round trip with their jobs.
  defineStreamCommands(queueRedis);
  // A delivery whose jobs cannot be added after its XADDs went out is sent again after the lease:
  // start one only when both connections are up (they come back from an outage one by one).
  const connected = () => redis.status === 'ready' && queueRedis.status === 'ready';
  const inFlight = new Set<number>();
  let waiting: { row: OutboxRow; done: (ok: boolean) => void }[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pass: Promise<number> | undefined;
  let stopped = true;

  /** Delivers rows in order: their events first (a run's `requested` precedes its job), then jobs. */
  async function deliverRows(rows: OutboxRow[]): Promise<boolean> {
    // A command sent while disconnected would wait for the reconnect; the outbox already
    // holds the rows, so fail fast and let the relay deliver them when Redis is back.
    const mine = rows.filter((row) => !inFlight.has(row.id));
    if (!connected() || mine.length === 0) return false;
    for (const row of mine) inFlight.add(row.id);
    try {
      // One round trip on the queue's connection: the XADDs, then the jobs. Redis runs one
      // connection's commands in order, so a job is added only after its announcement was
      // written (an XADD that errored while the jobs went in is a stream key of the wrong
      // type: the rows are left to the relay, and adding their jobs again is a no-op).
      const pipeline = await queuePipeline(queue);
      for (const row of mine)
        appendEvent(pipeline, stream, { ...row, type: row.type as EventType });
      const jobs = mine.flatMap((row) =>
        row.enqueueRunId ? [runJob(row.enqueueRunId, row.threadId)] : [],
      );
      const added = queueRunJobs(queue, pipeline, jobs);
      added.catch(() => {});
      const results = await withTimeout(pipeline.exec(), DELIVERY_TIMEOUT_MS, 'XADD and enqueue');
      const failed = results?.find(([error]) => error)?.[0];
      if (failed) throw failed;
      await added;
      const marked = await db.markOutboxDelivered(mine.map((row) => row.id));
      // A run that finished meanwhile may have handed its thread's next job to one of these
      // announcements (Store.finishRun): its event is out now, so its job may go too.
      const enqueued = new Set(jobs.map((job) => job.data.runId));
      const handed = marked.flatMap((row) =>
        row.enqueueRunId && !enqueued.has(row.enqueueRunId)
          ? [runJob(row.enqueueRunId, row.threadId)]
          : [],
      );
      if (handed.length > 0) await addHandedJobs(handed);
      return true;
    } catch (error) {
      logger.warn(
        { err: error, rows: mine.length, runId: mine[0]?.runId, threadId: mine[0]?.threadId },
        'outbox delivery failed; the relay will retry',
      );
      return false;
    } finally {
      for (const row of mine) inFlight.delete(row.id);
    }
  }

  /**
   * The rows are marked delivered already, so a failure here is not retried by the relay: the
   * reconciler enqueues a thread head with no job after RUN_STALE_MS.
   */
  async function addHandedJobs(jobs: ReturnType<typeof runJob>[]) {
    try {
      await withTimeout(queue.addBulk(jobs), DELIVERY_TIMEOUT_MS, 'enqueue');
    } catch (error) {
      logger.warn(
        { err: error, runId: jobs[0]?.data.runId },
        'could not enqueue a run handed to its announcement; the reconciler will',
      );
    }
  }

  function flush() {
    const batch = waiting;
    waiting = [];
    void deliverRows(batch.map((w) => w.row)).then((ok) => {
      for (const w of batch) w.done(ok);
    });
  }

  async function relayOnce(): Promise<number> {
    if (!connected()) return 0;
    const rows = await db.claimPendingOutbox(
      new Date(Date.now() - RELAY_GRACE_MS),
      RELAY_BATCH,
      RELAY_LEASE_MS,
    );
    const todo = rows.filter((row) => !inFlight.has(row.id));
    if (todo.length === 0 || !(await deliverRows(todo))) return 0;
    logger.info({ delivered: todo.length }, 'outbox relay delivered pending rows');
    return todo.length;
  }

  function relayPending(): Promise<number> {
    // One pass at a time: a timer tick and a reconnect must not deliver the same rows twice.
    pass ??= relayOnce().finally(() => {
      pass = undefined;
    });
    return pass;
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(async () => {
      try {
        await relayPending();
      } catch (error) {
        logger.error({ err: error }, 'outbox relay pass failed');
      }
      schedule();
    }, RELAY_INTERVAL_MS);
  }

  return {
    deliver(row) {
      committed?.(row);
      return new Promise((done) => {
        if (waiting.length === 0) setImmediate(flush);
        waiting.push({ row, done });
      });
    },
    relayPending,
    startRelay() {
      stopped = false;
      schedule();
    },
    async stopRelay() {
      stopped = true;
      clearTimeout(timer);
      await pass;
    },
  };
}
