const caches = new WeakMap<object, Map<string, unknown>>();

/**
 * Statements a hot path runs on every request or job, prepared once per database (either
 * engine's drizzle instance): drizzle would otherwise build the SQL on every call, which costs
 * more than running it (the figures are in the README). On SQLite, in `set()` a placeholder must
 * be wrapped in sql`` and given the driver's value (epoch ms for timestamps, JSON text for json
 * columns); in `values()` and `where()` the column maps it. On PostgreSQL a statement prepared on
 * the pool would run on another connection than a transaction's, so what runs inside a
 * transaction is sent as plain SQL.
 */
export function prepared<D extends object, T>(db: D, name: string, build: (db: D) => T): T {
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
