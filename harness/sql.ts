import { Database } from 'bun:sqlite';
import type { SQL } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/bun-sqlite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { isPostgresUrl, sqlitePath } from '../db/path';

/**
 * A connection of its own to a store's database, for tests, bench and chaos to look at what the
 * store wrote (or, rarely, to age a row): services never need this, so it is not on `Store`.
 */
export interface SqlReader {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Rows of a query written once for both engines: plain objects keyed by the SQL column names,
   * values as the driver returns them.
   */
  select(query: SQL): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/**
 * Opens `databaseUrl` (a SQLite file the store has created, or a PostgreSQL database) beside
 * whatever store has it open. Applies no migrations.
 */
export async function openSql(databaseUrl: string): Promise<SqlReader> {
  if (isPostgresUrl(databaseUrl)) {
    const client = postgres(databaseUrl, { max: 2, onnotice: () => {} });
    const db = drizzlePostgres(client);
    return {
      dialect: 'postgres',
      select: async (query) => [...(await db.execute<Record<string, unknown>>(query))],
      close: () => client.end({ timeout: 5 }),
    };
  }
  const sqlite = new Database(sqlitePath(databaseUrl), { strict: true });
  // The store's own connection (or another process) may hold the write lock: wait, not fail.
  sqlite.exec('PRAGMA busy_timeout = 5000');
  const db = drizzleSqlite(sqlite);
  return {
    dialect: 'sqlite',
    select: async (query) => db.all<Record<string, unknown>>(query),
    close: async () => sqlite.close(),
  };
}
