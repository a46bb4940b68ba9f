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
  close(): void;
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
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  const probe = sqlite.prepare('SELECT 1');
  return {
    db,
    ping: async () => {
      probe.get();
    },
    close: () => sqlite.close(),
  };
}
