import { join } from 'node:path';
import postgres from 'postgres';

/**
 * Which store the integration suite runs on: `TEST_DATABASE=postgres` runs it on PostgreSQL
 * (a fresh database per test app, on the server at `TEST_POSTGRES_URL`), anything else on a
 * fresh SQLite file. `.ci/run` runs the suite once each way.
 */
export const TEST_DATABASE = process.env.TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';
/** The server's maintenance database: trust auth on this machine's local PostgreSQL. */
export const TEST_POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let counter = 0;

/**
 * A store of its own for one test app or process group: a SQLite file in `dir`, or a new
 * PostgreSQL database dropped again by `drop()`.
 */
export async function createTestDatabase(
  dir: string,
  dialect: 'sqlite' | 'postgres' = TEST_DATABASE,
): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') {
    return { url: `file:${join(dir, `test-${counter++}.db`)}`, drop: async () => {} };
  }
  const name = `agent_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const admin = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
