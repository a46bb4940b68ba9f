import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sqlitePath } from '../../db/path';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivatePostgres, postgresServerInstalled } from '../../harness/private-postgres';
import { TEST_DATABASE } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import { captureLogs, startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

// This test stops PostgreSQL, so it runs its own server: never the shared one. It belongs to the
// PostgreSQL suite (bun run test:postgres).
const enabled = redisTestsEnabled() && TEST_DATABASE === 'postgres' && postgresServerInstalled();

describe.skipIf(!enabled)('PostgreSQL unreachable', () => {
  let pg: PrivatePostgres;
  let llm: FakeLlm;
  let t: TestApp;
  const { logger, lines } = captureLogs();
  beforeAll(async () => {
    pg = await PrivatePostgres.start();
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      logger,
      // One attempt a run: a wait for the database must not spend it.
      env: { OPENAI_BASE_URL: llm.url, DATABASE_URL: pg.url, RUN_ATTEMPTS: '1' },
    });
  });
  afterAll(async () => {
    pg.up();
    await t.close();
    await llm.stop();
    pg.stop();
  });

  test('ingress answers 503 while the database is down, and works again once it is back', async () => {
    const threadId = `pg-outage-${Date.now()}`;
    const before = await t.post({ content: 'before the outage', threadId });
    expect(before.status).toBe(202);
    await t.events.waitForTerminal(before.body.runId);

    pg.down();
    const during = await t.post({ content: 'while the database is down', threadId });
    expect(during).toMatchObject({ status: 503, body: { error: { code: 'store_unavailable' } } });
    expect(await t.get('/ready')).toMatchObject({
      status: 503,
      body: { checks: { database: expect.not.stringMatching(/^ok$/) } },
    });
    expect((await t.get(`/api/chat/runs/${before.body.runId}`)).status).toBe(503);
    expect((await t.get('/health')).status).toBe(200);

    pg.up();
    const after = await t.post({ content: 'after the outage', threadId });
    expect(after.status).toBe(202);
    const events = await t.events.waitForTerminal(after.body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
    // The thread holds what was accepted, and nothing of the rejected request.
    const messages = await t.get(`/api/chat/threads/${threadId}/messages`);
    expect(messages.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'before the outage',
      'echo: before the outage',
      'after the outage',
      'echo: after the outage',
    ]);
  });

  test('a run whose database goes away mid-run waits, spends no attempt, and completes once', async () => {
    const calls = llm.requests.length;
    llm.enqueue({ kind: 'reply', delayMs: 500 });
    const posted = await t.post({ content: 'answered while the database is down' });
    expect(posted.status).toBe(202);
    await llm.waitForRequests(calls + 1);
    // The model is answering: take the database away before the run can store the reply.
    pg.down();
    const waiting = (line: string) => line.includes('the database is not answering; queue paused');
    expect(await waitForValue(() => lines.some(waiting), Boolean)).toBe(true);
    pg.up();
    const events = await t.events.waitForTerminal(posted.body.runId, 20_000);
    expect(events.filter((e) => e.type === 'agent.run.completed')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'agent.run.failed')).toHaveLength(0);
    const run = await t.get(`/api/chat/runs/${posted.body.runId}`);
    expect(run.body).toMatchObject({ status: 'completed', error: null });
    expect(run.body.reply.content).toBe('echo: answered while the database is down');
  });
});

describe.skipIf(!redisTestsEnabled() || TEST_DATABASE !== 'sqlite')(
  'SQLite locked by another process',
  () => {
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
  },
);
