import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/bun-sql';
import { migrate } from 'drizzle-orm/bun-sql/migrator';
import { NO_WEBHOOKS, type Store, withUnavailable } from '../store';
import { type Db, UNAVAILABLE } from './database';
import { answerRun, pauseRun } from './queries/actions';
import { purgeIdempotencyKeys } from './queries/idempotency';
import { insertRunRequest } from './queries/ingress';
import { getMessage, listMessagesBetween, listThreadMessages } from './queries/messages';
import { claimPendingOutbox, markOutboxDelivered } from './queries/outbox';
import { cancelRun, finishRun } from './queries/run-ends';
import {
  getRun,
  getRunWithReply,
  listThreadHeads,
  listThreadRuns,
  recordRunRetry,
  startRunAttempt,
} from './queries/runs';
import { commitStep, listRunSteps } from './queries/steps';
import { deleteThread } from './queries/thread-deletion';
import { getThreadDetails, listExpiredThreads, listThreads } from './queries/thread-list';
import {
  createThread,
  getThread,
  getThreadMemory,
  saveSummary,
  saveTitle,
  updateThread,
} from './queries/threads';
import {
  claimDueWebhooks,
  listWebhookDeliveries,
  recordWebhookAttempt,
  redeliverWebhook,
  setWebhookTargets,
} from './queries/webhooks';

const MIGRATIONS = join(import.meta.dir, '..', 'migrations', 'postgres');
/** Any fixed number: processes starting together take turns applying migrations. */
const MIGRATION_LOCK = 0x61676e74;

/** Opens the PostgreSQL store (a pool of `poolSize` connections) and applies pending migrations. */
export async function openPostgresStore(
  databaseUrl: string,
  poolSize: number,
  webhooks = NO_WEBHOOKS,
): Promise<Store> {
  // Bun's own client: its socket writes cost a fraction of the `postgres` package's on Bun's
  // `node:net`, which made a run on PostgreSQL twice the CPU of one on SQLite
  // (bench/README.md, "P6: where PostgreSQL's gap is").
  const client = new Bun.SQL(databaseUrl, { max: poolSize });
  const db: Db = drizzle({ client });
  setWebhookTargets(db, webhooks);
  try {
    await migrateOnce(client, db);
  } catch (error) {
    await client.close({ timeout: 1 });
    throw error;
  }
  return withUnavailable(
    {
      insertRunRequest: (input) => insertRunRequest(db, input),
      getRun: (runId) => getRun(db, runId),
      getRunWithReply: (runId) => getRunWithReply(db, runId),
      startRunAttempt: (input) => startRunAttempt(db, input),
      pauseRun: (input) => pauseRun(db, input),
      answerRun: (input) => answerRun(db, input),
      recordRunRetry: (runId, attempts, error) => recordRunRetry(db, runId, attempts, error),
      cancelRun: (input) => cancelRun(db, input),
      finishRun: (input) => finishRun(db, input),
      commitStep: (input) => commitStep(db, input),
      listRunSteps: (runId) => listRunSteps(db, runId),
      listThreadRuns: (threadId, opts) => listThreadRuns(db, threadId, opts),
      listThreadHeads: (limit) => listThreadHeads(db, limit),
      claimPendingOutbox: (before, limit, leaseMs) =>
        claimPendingOutbox(db, before, limit, leaseMs),
      markOutboxDelivered: (ids) => markOutboxDelivered(db, ids),
      claimDueWebhooks: (now, limit, leaseMs) => claimDueWebhooks(db, now, limit, leaseMs),
      recordWebhookAttempt: (attempt) => recordWebhookAttempt(db, attempt),
      listWebhookDeliveries: (query) => listWebhookDeliveries(db, query),
      redeliverWebhook: (id, now) => redeliverWebhook(db, id, now),
      getThread: (threadId) => getThread(db, threadId),
      getThreadDetails: (threadId) => getThreadDetails(db, threadId),
      createThread: (input) => createThread(db, input),
      listThreads: (opts) => listThreads(db, opts),
      updateThread: (input) => updateThread(db, input),
      deleteThread: (input) => deleteThread(db, input),
      listExpiredThreads: (before, limit) => listExpiredThreads(db, before, limit),
      saveSummary: (threadId, summary) => saveSummary(db, threadId, summary),
      saveTitle: (input) => saveTitle(db, input),
      getThreadMemory: (threadId, throughSeq, count) =>
        getThreadMemory(db, threadId, throughSeq, count),
      getMessage: (messageId) => getMessage(db, messageId),
      listThreadMessages: (threadId, opts) => listThreadMessages(db, threadId, opts),
      listMessagesBetween: (threadId, afterSeq, beforeSeq) =>
        listMessagesBetween(db, threadId, afterSeq, beforeSeq),
      purgeIdempotencyKeys: (before) => purgeIdempotencyKeys(db, before),
      ping: async () => {
        await db.execute(sql`select 1`);
      },
      close: () => client.close({ timeout: 5 }),
    },
    UNAVAILABLE,
  );
}

/**
 * drizzle's migrator does not lock: two processes starting at once would both apply the same
 * migration. A session advisory lock, held on a connection of its own, makes them take turns.
 */
async function migrateOnce(client: Bun.SQL, db: Db) {
  const lock = await client.reserve();
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(db, { migrationsFolder: MIGRATIONS });
  } finally {
    await lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
    lock.release();
  }
}
