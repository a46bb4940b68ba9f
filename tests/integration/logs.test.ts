import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { captureLogs, startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const SECRETS = {
  API_KEYS: 'api-key-very-secret-1',
  ADMIN_PASSWORD: 'admin-pass-very-secret-2',
  OPENAI_API_KEY: 'sk-openai-very-secret-3',
};

describe.skipIf(!redisTestsEnabled())('logs', () => {
  let llm: FakeLlm;
  let t: TestApp;
  const { logger, lines } = captureLogs();
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ logger, env: { ...SECRETS, OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  const auth = { authorization: `Bearer ${SECRETS.API_KEYS}` };

  test('a run, failures, bad credentials: no secret reaches a log line', async () => {
    llm.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'log me' }, auth);
    await t.events.waitForTerminal(body.runId);
    const good = await t.post({ content: 'and me' }, auth);
    await t.events.waitForTerminal(good.body.runId);
    await t.request('/admin/queues', {
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${SECRETS.API_KEYS}`).toString('base64')}`,
      },
    });
    await t.request('/api/chat/models', {
      headers: { authorization: `Bearer ${SECRETS.ADMIN_PASSWORD}` },
    });
    await t.request('/metrics', {
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${SECRETS.ADMIN_PASSWORD}`).toString('base64')}`,
      },
    });
    // The fake model server did get the key: it was sent, just never logged.
    expect(llm.requests[0]?.headers.authorization).toBe(`Bearer ${SECRETS.OPENAI_API_KEY}`);

    expect(lines.length).toBeGreaterThan(5);
    for (const secret of Object.values(SECRETS)) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
    const events = JSON.stringify(t.events.entries);
    for (const secret of Object.values(SECRETS)) expect(events).not.toContain(secret);
  });

  test('every line about a run carries runId and threadId', async () => {
    const runLines = lines
      .map((l) => JSON.parse(l))
      .filter((l) => /run/i.test(l.msg) && l.msg !== 'request');
    expect(runLines.length).toBeGreaterThanOrEqual(4);
    for (const line of runLines) {
      expect(line.runId).toMatch(/^run_/);
      expect(line.threadId).toMatch(/^thr_/);
    }
  });

  test('one line per request: method, route, status, duration', async () => {
    await t.request('/health');
    // The line is written once the response is out, just after handle() returns.
    const requests = await waitForValue(
      () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request'),
      (logged) => logged.some((l) => l.route === '/health'),
    );
    expect(requests).toContainEqual(
      expect.objectContaining({ method: 'GET', route: '/health', status: 200 }),
    );
    expect(requests).toContainEqual(
      expect.objectContaining({
        method: 'POST',
        route: '/api/chat/messages',
        status: 202,
        durationMs: expect.any(Number),
      }),
    );
    expect(requests).toContainEqual(
      expect.objectContaining({ method: 'GET', route: '/admin/*', status: 401 }),
    );
  });
});
