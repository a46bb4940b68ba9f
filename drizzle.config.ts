import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineConfig } from 'drizzle-kit';
import { sqlitePath } from './db/path';
import { loadConfig } from './src/config';

// drizzle-kit talks to SQLite through @libsql/client, which wants a `file:` URL.
const path = sqlitePath(loadConfig().databaseUrl);
mkdirSync(dirname(path), { recursive: true });

export default defineConfig({
  dialect: 'sqlite',
  schema: './db/schema.ts',
  out: './db/migrations',
  dbCredentials: { url: `file:${path}` },
  strict: true,
  verbose: true,
});
