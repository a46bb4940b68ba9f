import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { drizzle } from 'drizzle-orm/bun-sqlite';
import { migrate } from 'drizzle-orm/bun-sqlite/migrator';
import { sqlitePath } from '../path';
import { NO_WEBHOOKS, type Store, withUnavailable } from '../store';
import type { Db } from './database';
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
import * as schema from './schema';

const MIGRATIONS = join(import.meta.dir, '..', 'migrations', 'sqlite');

/** Opens the SQLite store (a `file:` URL or a path) and applies pending migrations. */
export function openSqliteStore(databaseUrl: string, webhooks = NO_WEBHOOKS): Store {
  const path = sqlitePath(databaseUrl);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { create: true, strict: true });
  // busy_timeout makes a second process (start:api beside start:worker) wait, not fail; WAL lets
  // readers run beside the one writer; NORMAL is durable across process crashes in WAL mode.
  sqlite.exec('PRAGMA busy_timeout = 5000');
  sqlite.exec('PRAGMA journal_mode = WAL');
  sqlite.exec('PRAGMA synchronous = NORMAL');
  sqlite.exec('PRAGMA foreign_keys = ON');
  // Ids are random, so every insert lands on its own index page: keep the hot pages cached.
  sqlite.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
  const db = drizzle(sqlite, { schema });
  migrateOnce(db);
  setWebhookTargets(db, webhooks);
  const checkpointer = path === ':memory:' ? undefined : startCheckpointer(sqlite, path);
  const probe = sqlite.prepare('SELECT 1');
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
        probe.get();
      },
      close: async () => {
        await checkpointer?.stop();
        sqlite.close();
      },
    },
    // Another process held the write lock past busy_timeout.
    /^SQLITE_BUSY/,
  );
}

/**
 * Processes that open a new file together (start:api beside start:worker) race to migrate it:
 * drizzle reads which migrations are applied before it takes the write lock, so the loser
 * fails, with SQLITE_BUSY or on a table the winner has just created. Its transaction rolled
 * back, so it tries again and then finds the migrations applied.
 */
function migrateOnce(db: Db) {
  for (let attempt = 1; ; attempt++) {
    try {
      migrate(db, { migrationsFolder: MIGRATIONS });
      return;
    } catch (error) {
      if (attempt >= 10 || !LOST_RACE.test(describe(error))) throw error;
      Bun.sleepSync(10 * attempt);
    }
  }
}
const LOST_RACE = /SQLITE_BUSY|database is locked|already exists/i;
const describe = (error: unknown): string =>
  error instanceof Error ? `${error.message} ${describe(error.cause)}` : String(error ?? '');

/** Page cache per connection (SQLite's default is 2 MiB). */
const CACHE_KIB = 64 * 1024;
/**
 * SQLite's own checkpoint, inside a commit, only as a safety net: the WAL grows to this many
 * pages (64 MiB) only if the checkpointer thread falls that far behind.
 */
const FALLBACK_CHECKPOINT_PAGES = 16_384;

/** Moves WAL checkpoints (and their fsync) off the event loop: see checkpointer.ts. */
function startCheckpointer(sqlite: Database, path: string) {
  sqlite.exec(`PRAGMA wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`);
  const worker = new Worker(new URL('./checkpointer.ts', import.meta.url).href);
  worker.unref();
  worker.postMessage({ open: path });
  return {
    async stop() {
      const closed = new Promise<void>((resolve) => {
        worker.onmessage = () => resolve();
        setTimeout(resolve, 1000).unref();
      });
      worker.postMessage({ close: true });
      await closed;
      worker.terminate();
    },
  };
}
