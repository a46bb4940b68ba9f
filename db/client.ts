import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { drizzle } from 'drizzle-orm/bun-sqlite';
import { migrate } from 'drizzle-orm/bun-sqlite/migrator';
import { sqlitePath } from './path';
import * as schema from './schema';

export type Db = ReturnType<typeof drizzle<typeof schema>>;

export interface DbHandle {
  db: Db;
  /** Cheap liveness probe for `/ready`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const MIGRATIONS = join(import.meta.dir, 'migrations');

/**
 * Opens the store and applies pending migrations. Only `db/` knows the engine: services get
 * `Db` and call the async functions of `db/queries/`.
 */
export function openDb(databaseUrl: string): DbHandle {
  const path = sqlitePath(databaseUrl);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { create: true, strict: true });
  // WAL lets readers run beside the one writer; NORMAL is durable across process crashes in WAL
  // mode; busy_timeout makes a second process (start:api beside start:worker) wait, not fail.
  sqlite.exec('PRAGMA journal_mode = WAL');
  sqlite.exec('PRAGMA synchronous = NORMAL');
  sqlite.exec('PRAGMA busy_timeout = 5000');
  sqlite.exec('PRAGMA foreign_keys = ON');
  // Ids are random, so every insert lands on its own index page: keep the hot pages cached.
  sqlite.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  const checkpointer = path === ':memory:' ? undefined : startCheckpointer(sqlite, path);
  const probe = sqlite.prepare('SELECT 1');
  return {
    db,
    ping: async () => {
      probe.get();
    },
    close: async () => {
      await checkpointer?.stop();
      sqlite.close();
    },
  };
}

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
