import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineConfig } from 'drizzle-kit';
import { isPostgresUrl, sqlitePath } from './db/path';
import { loadConfig } from './src/config';

// DATABASE_URL picks the dialect, as it does for the server: db:generate, db:check, db:migrate
// and db:studio then work on that dialect's schema and migrations (db/migrations/<dialect>).
const url = loadConfig().databaseUrl;

function sqliteConfig() {
  // drizzle-kit talks to SQLite through @libsql/client, which wants a `file:` URL.
  const path = sqlitePath(url);
  mkdirSync(dirname(path), { recursive: true });
  return defineConfig({
    dialect: 'sqlite',
    schema: './db/sqlite/schema.ts',
    out: './db/migrations/sqlite',
    dbCredentials: { url: `file:${path}` },
    strict: true,
    verbose: true,
  });
}

export default isPostgresUrl(url)
  ? defineConfig({
      dialect: 'postgresql',
      schema: './db/postgres/schema.ts',
      out: './db/migrations/postgres',
      dbCredentials: { url },
      strict: true,
      verbose: true,
    })
  : sqliteConfig();
