import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import { createRedisClient, type RedisClient } from '../redis/client';
import { buildRejection, type RejectionError } from './event';
import { type Fields, toFields } from './stream-fields';
import { appendRejection, type StreamTarget } from './stream-writer';

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const READ_COUNT = 100;
const BLOCK_MS = 1000;

/** A producer's command, as the consumer hands it to the service that carries it out. */
export interface StreamCommand {
  requestId: string;
  /** Set on commands about one run (cancel, answers); absent on a new message. */
  runId?: string;
  /** The entry's `payload`, parsed from JSON. */
  payload: unknown;
}

/**
 * What each command type does, keyed by its `type`. A handler throws an `AppError` to refuse the
 * command (it is answered `agent.run.rejected`, as HTTP would answer it), anything else to have
 * it tried again; it returns the run it made or touched, for the log. The consumer knows the
 * stream's protocol only; which services carry out the commands is wired in src/roles.ts.
 */
export type StreamCommands = Record<
  string,
  (command: StreamCommand) => Promise<{ runId: string; threadId: string }>
>;

/**
 * The runtime reads its own stream as one consumer of a group, so other services can ask for a
 * run without HTTP: an `agent.run.requested` entry with a `requestId` and no `runId` is handed to
 * `commands` (the same ingress code as POST /api/chat/messages, with the requestId as
 * idempotency key). Every entry read is acknowledged, but only once its effect is committed: a
 * consumer that dies leaves its entries pending, and another claims them after
 * STREAM_CLAIM_IDLE_MS; an entry delivered STREAM_MAX_DELIVERIES times is rejected
 * (`delivery_failed`) so it cannot block the group. See "Stream requests" in docs/events.md.
 */
export function createStreamConsumer(
  deps: { config: Config; redis: RedisClient; stream: StreamTarget; logger: Logger },
  commands: StreamCommands,
) {
  const { config, redis, stream, logger } = deps;
  const { streamKey: key, consumerGroup: group, consumerName: name } = config.redis;
  const { claimIdleMs, maxDeliveries } = config.stream;
  // XREADGROUP BLOCK holds its connection: it gets one of its own.
  const reader = createRedisClient(config.redis, { maxRetriesPerRequest: null });
  reader.on('error', () => {}); // reported once by the shared client (deps.ts)
  let running = false;
  let loop: Promise<void> | undefined;
  let lastClaim = 0;

  async function ensureGroup() {
    try {
      // From id 0: requests written before the service first ran are served too.
      await reader.xgroup('CREATE', key, group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  }

  async function reject(id: string, requestId: string, error: RejectionError) {
    const transaction = redis.multi();
    appendRejection(transaction, stream, buildRejection(requestId, error));
    await transaction.xack(key, group, id).exec();
    logger.info({ requestId, error: error.code }, 'stream request rejected');
  }

  /**
   * A producer's command: a type `commands` carries out, except our own announcements
   * (`agent.run.requested` with a runId). Everything else is only acknowledged.
   */
  const isRequest = (fields: Fields) =>
    fields.type !== undefined &&
    Object.hasOwn(commands, fields.type) &&
    !(fields.type === 'agent.run.requested' && fields.runId);

  /** Handles one request; throws (leaving it pending) only when it must be tried again. */
  async function handle(id: string, fields: Fields) {
    const requestId = fields.requestId ?? '';
    try {
      if (!REQUEST_ID.test(requestId)) {
        throw new AppError('invalid_request', 'requestId must match ^[A-Za-z0-9_.:-]{1,128}$');
      }
      // A command may come without a payload (a cancel without a reason); one that is sent
      // must be JSON.
      let payload: unknown;
      try {
        payload = fields.payload === undefined ? undefined : JSON.parse(fields.payload);
      } catch {
        throw new AppError('invalid_request', 'payload is not valid JSON');
      }
      const command = commands[fields.type as string] as StreamCommands[string];
      const done = await command({ requestId, runId: fields.runId || undefined, payload });
      await redis.xack(key, group, id);
      logger.info(
        { requestId, runId: done.runId, threadId: done.threadId },
        'stream request accepted',
      );
    } catch (error) {
      // The same error an HTTP client would get for this body.
      if (error instanceof AppError) await reject(id, requestId, error.toBody().error);
      else throw error;
    }
  }

  /**
   * Most entries are our own events (three or more a run): they are acknowledged together, in
   * one XACK, and the requests among them handled one by one, in stream order.
   */
  async function handleAll(entries: [string, string[]][]) {
    const requests: [string, Fields][] = [];
    const others: string[] = [];
    for (const [id, raw] of entries) {
      const fields = toFields(raw);
      if (isRequest(fields)) requests.push([id, fields]);
      else others.push(id);
    }
    if (others.length > 0) {
      try {
        await redis.xack(key, group, ...others);
      } catch (error) {
        // Left pending: claimStale acknowledges them after claimIdleMs.
        logger.debug({ err: error, entries: others.length }, 'stream acknowledge failed');
      }
    }
    for (const [id, fields] of requests) {
      try {
        await handle(id, fields);
      } catch (error) {
        logger.warn(
          { err: error, entryId: id },
          'stream entry failed; it stays pending for a retry',
        );
      }
    }
  }

  /** Takes over entries idle for claimIdleMs (a dead consumer's, or our own failures). */
  async function claimStale() {
    const pending = (await redis.xpending(
      key,
      group,
      'IDLE',
      claimIdleMs,
      '-',
      '+',
      READ_COUNT,
    )) as [string, string, number, number][];
    for (const [id, , , deliveries] of pending) {
      if (deliveries >= maxDeliveries) {
        const [entry] = (await redis.xrange(key, id, id)) as [string, string[]][];
        const requestId = entry ? (toFields(entry[1]).requestId ?? '') : '';
        await reject(id, requestId, {
          code: 'delivery_failed',
          message: `the entry could not be processed in ${deliveries} deliveries`,
        }).catch(() => {});
        continue;
      }
      // A Cluster has the same XCLAIM; TypeScript only cannot pick among its many overloads on
      // the union type.
      const claimed = (await (redis as Redis).xclaim(key, group, name, claimIdleMs, id)) as [
        string,
        string[] | null,
      ][];
      for (const [claimedId, raw] of claimed) {
        // Trimmed from the stream while pending: nothing left to do.
        if (!raw) await redis.xack(key, group, claimedId);
        else await handleAll([[claimedId, raw]]);
      }
    }
  }

  async function run() {
    while (running) {
      try {
        if (Date.now() - lastClaim >= Math.min(claimIdleMs, 5000)) {
          lastClaim = Date.now();
          await claimStale();
        }
        const result = (await reader.xreadgroup(
          'GROUP',
          group,
          name,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          key,
          '>',
        )) as [string, [string, string[]][]][] | null;
        for (const [, entries] of result ?? []) await handleAll(entries);
      } catch (error) {
        if (!running) break;
        // The group is gone when Redis lost its data: create it again, then go on.
        if (String((error as Error).message).includes('NOGROUP'))
          await ensureGroup().catch(() => {});
        else {
          logger.debug({ err: error }, 'stream consumer read failed; retrying');
          await Bun.sleep(500);
        }
      }
    }
  }

  return {
    async start() {
      running = true;
      await ensureGroup().catch((error) =>
        logger.debug({ err: error }, 'consumer group not created yet; will retry'),
      );
      loop = run();
    },
    async stop() {
      running = false;
      // Ends the blocking read now (it rejects, and the loop sees it is stopped), rather than
      // after up to BLOCK_MS. An entry read but not yet handled stays pending for the group.
      reader.disconnect();
      await loop;
    },
  };
}
