import type { Redis } from 'ioredis';
import type { Db } from '../../db/client';
import { listPendingOutbox, markOutboxDelivered } from '../../db/queries/outbox';
import type { OutboxRow } from '../../db/schema';
import { enqueueRun, type RunQueue } from '../../jobs/catalog';
import type { Logger } from '../logger';
import type { EventType } from './event';
import { publishEvent, type StreamTarget } from './stream-writer';

/** How long one Redis call of a delivery may take before the row is left to the relay. */
const DELIVERY_TIMEOUT_MS = 5000;
/** Rows younger than this may still be in another process's hands (its own inline delivery). */
const RELAY_GRACE_MS = 5000;
const RELAY_INTERVAL_MS = 1000;
const RELAY_BATCH = 200;

export interface Publisher {
  /** Delivers one committed outbox row now; false when it is left for the relay. */
  deliver(row: OutboxRow): Promise<boolean>;
  /** One relay pass: delivers pending rows in order, stops at the first failure. */
  relayPending(): Promise<number>;
  startRelay(): void;
  stopRelay(): Promise<void>;
}

export function createPublisher(deps: {
  db: Db;
  redis: Redis;
  queue: RunQueue;
  stream: StreamTarget;
  logger: Logger;
}): Publisher {
  const { db, redis, queue, stream, logger } = deps;
  const inFlight = new Set<number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pass: Promise<number> | undefined;
  let stopped = true;

  async function deliver(row: OutboxRow): Promise<boolean> {
    // A command sent while disconnected would wait for the reconnect; the outbox already
    // holds the row, so fail fast and let the relay deliver it when Redis is back.
    if (redis.status !== 'ready' || inFlight.has(row.id)) return false;
    inFlight.add(row.id);
    try {
      // The event first: a run's `requested` must be on the stream before its job can start.
      await withTimeout(
        publishEvent(redis, stream, { ...row, type: row.type as EventType }),
        'XADD',
      );
      if (row.enqueueRunId) {
        await withTimeout(enqueueRun(queue, row.enqueueRunId, row.threadId), 'enqueue');
      }
      await markOutboxDelivered(db, row.id);
      return true;
    } catch (error) {
      logger.warn(
        { runId: row.runId, threadId: row.threadId, eventId: row.eventId, err: error },
        'outbox delivery failed; the relay will retry',
      );
      return false;
    } finally {
      inFlight.delete(row.id);
    }
  }

  async function relayOnce(): Promise<number> {
    let delivered = 0;
    const rows = await listPendingOutbox(db, new Date(Date.now() - RELAY_GRACE_MS), RELAY_BATCH);
    for (const row of rows) {
      if (inFlight.has(row.id)) continue;
      if (!(await deliver(row))) break;
      delivered += 1;
    }
    if (delivered > 0) logger.info({ delivered }, 'outbox relay delivered pending rows');
    return delivered;
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
    deliver,
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

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${DELIVERY_TIMEOUT_MS} ms`)),
      DELIVERY_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
