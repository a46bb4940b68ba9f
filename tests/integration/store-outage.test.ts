import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestApp, type TestApp } from '../support/app';
import { TEST_DATABASE } from '../support/database';
import { type FakeLlm, startFakeLlm } from '../support/fake-llm';
import { PrivatePostgres, postgresServerInstalled } from '../support/postgres';
import { redisTestsEnabled } from '../support/redis';

// This test stops PostgreSQL, so it runs its own server: never the shared one. It belongs to the
// PostgreSQL suite (bun run test:postgres).
const enabled = redisTestsEnabled() && TEST_DATABASE === 'postgres' && postgresServerInstalled();

describe.skipIf(!enabled)('PostgreSQL unreachable', () => {
  let pg: PrivatePostgres;
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    pg = await PrivatePostgres.start();
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, DATABASE_URL: pg.url } });
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
});
