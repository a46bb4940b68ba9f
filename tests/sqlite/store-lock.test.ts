import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sqlitePath } from '../../db/path';
import { TEST_DATABASE } from '../../harness/test-database';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

// SQLite locked by another process: a second connection to the app's own database file holds
// the write lock, as another process would.
// tests/sqlite/ belongs to the SQLite suite, `bun run test`; run on the other engine it stops
// with this error rather than skipping.
if (TEST_DATABASE !== 'sqlite') {
  throw new Error('tests/sqlite/ runs on SQLite only: `bun run test`');
}

describe.skipIf(!redisTestsEnabled())('SQLite locked by another process', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());

  test('ingress answers 503 while another process holds the write lock past busy_timeout', async () => {
    const other = new Database(sqlitePath(t.config.databaseUrl));
    other.exec('BEGIN IMMEDIATE'); // as another process would, for longer than 5 s
    try {
      const during = await t.post({ content: 'while the file is locked' });
      expect(during).toMatchObject({
        status: 503,
        body: { error: { code: 'store_unavailable' } },
      });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(await rowCounts(t.sql)).toMatchObject({ messages: 0, runs: 0 });
    expect((await t.post({ content: 'once it is released' })).status).toBe(202);
  }, 30_000);
});
