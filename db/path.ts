import { resolve } from 'node:path';

/**
 * The SQLite file behind a `DATABASE_URL`. bun:sqlite rejects `file:` URLs, so the prefix is
 * stripped here, in the one place both the server and drizzle-kit read it.
 */
export function sqlitePath(databaseUrl: string): string {
  const path = databaseUrl.replace(/^file:(\/\/)?/, '');
  return path === ':memory:' ? path : resolve(path);
}

/** `postgres://` and `postgresql://` URLs select PostgreSQL; anything else is a SQLite file. */
export function isPostgresUrl(databaseUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(databaseUrl);
}
