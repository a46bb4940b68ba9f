import type { Db } from './client';

const caches = new WeakMap<Db, Map<string, unknown>>();

/**
 * Statements a hot path runs on every request or job, prepared once per database: drizzle would
 * otherwise build the SQL and SQLite compile it on every call, which cost more than running it
 * (see bench/). In `set()` a placeholder must be wrapped in sql`` and given the driver's value
 * (epoch ms for timestamps, JSON text for json columns); in `values()` and `where()` the column
 * maps it.
 */
export function prepared<T>(db: Db, name: string, build: (db: Db) => T): T {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  let statements = cache.get(name) as T | undefined;
  if (!statements) {
    statements = build(db);
    cache.set(name, statements);
  }
  return statements;
}
