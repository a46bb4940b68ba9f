import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { freePort } from '../../harness/ports';
import { waitForValue } from '../../harness/wait';
import {
  newWebhookSecret,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../../harness/webhook-receiver';
import { captureLogs, startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

const SECRET = newWebhookSecret();

const deliveriesOf = async (t: TestApp, runId: string) =>
  (await t.call(`/api/webhooks/deliveries?runId=${runId}`)).body.deliveries;

/** The run's delivery once its status is `status` (the sender writes it after the request). */
async function deliveryOnce(t: TestApp, runId: string, status: string, attempts?: number) {
  const [delivery] = await waitForValue(
    () => deliveriesOf(t, runId),
    ([d]) => d?.status === status && (attempts === undefined || d.attempts === attempts),
    20_000,
  );
  if (delivery?.status !== status) {
    throw new Error(`delivery of ${runId} is ${JSON.stringify(delivery)}, not ${status}`);
  }
  return delivery;
}

describe.skipIf(!redisTestsEnabled())('webhooks: WEBHOOK_URL', () => {
  let llm: FakeLlm;
  let receiver: WebhookReceiver;
  let t: TestApp;
  const logs = captureLogs();
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    receiver = await startWebhookReceiver({ secret: SECRET });
    t = await startTestApp({
      logger: logs.logger,
      env: {
        OPENAI_BASE_URL: llm.url,
        WEBHOOK_URL: `${receiver.url}/hooks`,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_MAX_ATTEMPTS: '4',
        WEBHOOK_RETRY_SCHEDULE_MS: '50,100',
      },
    });
  });
  afterAll(async () => {
    await t.close();
    receiver.close();
    await llm.stop();
  });
  beforeEach(() => receiver.answerWith(() => ({ status: 200 })));

  test('a completed run: one signed POST, verified by the Standard Webhooks library', async () => {
    const { body } = await t.post({ content: 'hello webhooks' });
    const events = await t.events.waitForTerminal(body.runId);
    const completed = events.at(-1);
    await receiver.waitFor((got) => got.some((r) => r.webhookId === completed?.eventId));
    const [got] = receiver.of(completed?.eventId as string);
    expect(got?.verified).toBe(true);
    expect(got?.path).toBe('/hooks');
    // The event as the feeds send it, and the run view.
    expect(got?.event).toEqual({
      type: 'agent.run.completed',
      eventId: completed?.eventId,
      runId: body.runId,
      threadId: body.threadId,
      occurredAt: completed?.occurredAt,
      payload: completed?.payload,
      run: expect.objectContaining({
        id: body.runId,
        status: 'completed',
        reply: expect.objectContaining({ content: 'echo: hello webhooks' }),
      }),
    });
    // Only WEBHOOK_EVENTS: neither requested nor started was sent.
    const sentForRun = receiver.received.filter((r) => r.event?.runId === body.runId);
    expect(sentForRun.map((r) => r.event.type)).toEqual(['agent.run.completed']);
    const delivery = await deliveryOnce(t, body.runId, 'delivered');
    expect(delivery).toEqual({
      id: expect.stringMatching(/^whd_[a-z0-9]{24}$/),
      webhookId: completed?.eventId,
      url: `${receiver.url}/hooks`,
      eventType: 'agent.run.completed',
      runId: body.runId,
      threadId: body.threadId,
      status: 'delivered',
      attempts: 1,
      lastStatusCode: 200,
      lastError: null,
      nextAttemptAt: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      deliveredAt: expect.any(String),
    });
  });

  test('a receiver that fails 3 times, then succeeds, gets the event 4 times with one webhook-id', async () => {
    receiver.answerWith((r) => ({ status: r.attempt <= 3 ? 500 : 204 }));
    const { body } = await t.post({ content: 'flaky receiver' });
    const completed = (await t.events.waitForTerminal(body.runId)).at(-1);
    const id = completed?.eventId as string;
    await receiver.waitFor(() => receiver.of(id).length === 4);
    const got = receiver.of(id);
    expect(got.every((r) => r.verified)).toBe(true);
    // The same bytes every time, signed afresh.
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    const delivery = await deliveryOnce(t, body.runId, 'delivered');
    expect(delivery).toMatchObject({ attempts: 4, lastStatusCode: 204, lastError: null });
  });

  test('a receiver that never succeeds: failed after WEBHOOK_MAX_ATTEMPTS; redeliver tries once more', async () => {
    receiver.answerWith(() => ({ status: 503 }));
    const { body } = await t.post({ content: 'down receiver' });
    const id = (await t.events.waitForTerminal(body.runId)).at(-1)?.eventId as string;
    const failed = await deliveryOnce(t, body.runId, 'failed');
    expect(failed).toMatchObject({
      attempts: 4,
      lastStatusCode: 503,
      lastError: 'HTTP 503',
      nextAttemptAt: null,
      deliveredAt: null,
    });
    expect(receiver.of(id)).toHaveLength(4);
    const listed = await t.call(`/api/webhooks/deliveries?status=failed&runId=${body.runId}`);
    expect(listed.body.deliveries.map((d: { id: string }) => d.id)).toEqual([failed.id]);

    receiver.answerWith(() => ({ status: 200 }));
    const again = await t.call(`/api/webhooks/deliveries/${failed.id}/redeliver`, {
      method: 'POST',
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: failed.id, status: 'pending', webhookId: id });
    await receiver.waitFor(() => receiver.of(id).length === 5);
    expect(receiver.of(id).at(-1)?.body).toBe(receiver.of(id)[0]?.body as string);
    expect(await deliveryOnce(t, body.runId, 'delivered')).toMatchObject({ attempts: 5 });
  });

  test('redeliver a delivered one: the same webhook-id and body again', async () => {
    const { body } = await t.post({ content: 'redeliver me' });
    const id = (await t.events.waitForTerminal(body.runId)).at(-1)?.eventId as string;
    const delivered = await deliveryOnce(t, body.runId, 'delivered', 1);
    const again = await t.call(`/api/webhooks/deliveries/${delivered.id}/redeliver`, {
      method: 'POST',
    });
    expect(again.status).toBe(202);
    await receiver.waitFor(() => receiver.of(id).length === 2);
    const [first, second] = receiver.of(id);
    expect(second?.verified).toBe(true);
    expect(second?.body).toBe(first?.body as string);
    expect(await deliveryOnce(t, body.runId, 'delivered', 2)).toMatchObject({ attempts: 2 });
  });

  test('a redirecting receiver: the redirect is not followed, the attempt counts as failed', async () => {
    const target = await startWebhookReceiver({ secret: SECRET });
    try {
      receiver.answerWith((r) =>
        r.attempt === 1 ? { redirect: `${target.url}/elsewhere` } : { status: 200 },
      );
      const { body } = await t.post({ content: 'redirected' });
      const delivered = await deliveryOnce(t, body.runId, 'delivered', 2);
      expect(delivered).toMatchObject({ lastStatusCode: 200 });
      expect(target.received).toHaveLength(0);
      // The first attempt's outcome was kept until the second: read it from the log line.
      const line = logs.lines.find(
        (l) => l.includes('will retry') && l.includes(body.runId) && l.includes('302'),
      );
      expect(line).toContain('redirects are not followed');
    } finally {
      target.close();
    }
  });

  test('a hanging receiver is cut at 10 s: the attempt fails and is tried again', async () => {
    receiver.answerWith((r) => (r.attempt === 1 ? { hang: true } : { status: 200 }));
    const { body } = await t.post({ content: 'hang up' });
    const started = Date.now();
    const delivered = await deliveryOnce(t, body.runId, 'delivered', 2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(delivered.lastStatusCode).toBe(200);
    const line = logs.lines.find((l) => l.includes('will retry') && l.includes(body.runId));
    expect(line).toContain('no answer within 10 s');
  });

  test('a huge response body is not read: the delivery ends while the body is still coming', async () => {
    receiver.answerWith(() => ({ endless: true }));
    const { body } = await t.post({ content: 'endless body' });
    await deliveryOnce(t, body.runId, 'delivered', 1);
    // A reader of the body would never have finished; the sender let it go at once.
    expect(receiver.endless.bytes).toBeLessThan(64 * 1024 * 1024);
  });

  test('the delivery log pages newest first without a gap or a duplicate', async () => {
    const runIds: string[] = [];
    for (let i = 0; i < 5; i++) runIds.push((await t.post({ content: `page ${i}` })).body.runId);
    for (const runId of runIds) await deliveryOnce(t, runId, 'delivered');
    const all = (await t.call('/api/webhooks/deliveries?limit=100')).body.deliveries;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const at: string = cursor ? `&cursor=${cursor}` : '';
      const page = await t.call(`/api/webhooks/deliveries?limit=2${at}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.deliveries.map((d: { id: string }) => d.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((d: { id: string }) => d.id));
    expect(new Set(seen).size).toBe(seen.length);
    const created = all.map((d: { createdAt: string }) => d.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
  });

  test.each([
    ['status=bogus', 'invalid_request'],
    ['limit=0', 'invalid_request'],
    ['limit=101', 'invalid_request'],
    ['limit=2.5', 'invalid_request'],
    ['cursor=%25%25', 'invalid_cursor'],
    ['cursor=bm90LWpzb24', 'invalid_cursor'],
    ['other=1', 'invalid_request'],
  ])('the log with %s: 400 %s', async (query, code) => {
    const { status, body } = await t.call(`/api/webhooks/deliveries?${query}`);
    expect(status).toBe(400);
    expect(body.error.code).toBe(code);
  });

  test('redeliver an unknown delivery: 404, nothing changed', async () => {
    const before = await rowCounts(t.sql);
    const { status, body } = await t.call('/api/webhooks/deliveries/whd_nope/redeliver', {
      method: 'POST',
    });
    expect(status).toBe(404);
    expect(body.error.code).toBe('not_found');
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('deleting a thread drops its deliveries so far; those of its cancellations go out', async () => {
    const done = await t.post({ content: 'first' });
    const { threadId } = done.body;
    await deliveryOnce(t, done.body.runId, 'delivered');
    llm.setDefault({ kind: 'stall' });
    try {
      const stalled = await t.post({ content: 'think forever', threadId });
      await llm.waitForRequests(1);
      const response = await t.request(`/api/chat/threads/${threadId}`, { method: 'DELETE' });
      expect(response.status).toBe(204);
      expect(await deliveriesOf(t, done.body.runId)).toEqual([]);
      const cancelled = await deliveryOnce(t, stalled.body.runId, 'delivered');
      const [got] = receiver.of(cancelled.webhookId);
      expect(got?.verified).toBe(true);
      // The run is gone with its thread: the event alone, no run view.
      expect(got?.event).toMatchObject({
        type: 'agent.run.cancelled',
        runId: stalled.body.runId,
        payload: { by: 'thread_deleted' },
      });
      expect(got?.event.run).toBeUndefined();
    } finally {
      llm.reset();
    }
  });

  test('deliveries are counted by outcome in /metrics', async () => {
    const auth = `Basic ${btoa(`${t.config.admin.user}:${t.config.admin.password}`)}`;
    const text = await (await t.request('/metrics', { headers: { authorization: auth } })).text();
    const count = (outcome: string) =>
      Number(
        new RegExp(`webhook_deliveries_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1],
      );
    expect(count('delivered')).toBeGreaterThanOrEqual(5);
    expect(count('retry')).toBeGreaterThanOrEqual(6);
    expect(count('failed')).toBe(1);
  });

  test('the secret and the signatures are never in the logs', () => {
    const key = SECRET.slice('whsec_'.length);
    const signatures = receiver.received.map((r) => r.signature.slice(3));
    expect(logs.lines.length).toBeGreaterThan(0);
    for (const line of logs.lines) {
      expect(line).not.toContain(key);
      for (const signature of signatures) expect(line).not.toContain(signature);
    }
  });
});

describe.skipIf(!redisTestsEnabled())('webhooks: a message’s own URL', () => {
  let llm: FakeLlm;
  let receiver: WebhookReceiver;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    receiver = await startWebhookReceiver({ secret: SECRET });
    t = await startTestApp({
      env: {
        OPENAI_BASE_URL: llm.url,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOWED_URLS: `${receiver.url}/tenant-a,${receiver.url}/tenant-b/`,
        WEBHOOK_EVENTS: 'agent.run.started,agent.run.completed',
      },
    });
  });
  afterAll(async () => {
    await t.close();
    receiver.close();
    await llm.stop();
  });

  test.each([
    ['the prefix itself', '/tenant-a'],
    ['a path below it', '/tenant-a/hooks?token=abc'],
    ['below a prefix written with a slash', '/tenant-b/x'],
  ])('%s is allowed: the run’s events of WEBHOOK_EVENTS go there', async (_, path) => {
    const url = `${receiver.url}${path}`;
    const { status, body } = await t.post({ content: 'own hook', webhook: { url } });
    expect(status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    const ids = events.filter((e) => e.type !== 'agent.run.requested').map((e) => e.eventId);
    await receiver.waitFor((got) => ids.every((id) => got.some((r) => r.webhookId === id)));
    const got = receiver.received.filter((r) => r.event?.runId === body.runId);
    expect(got.map((r) => r.event.type)).toEqual(['agent.run.started', 'agent.run.completed']);
    expect(got.every((r) => r.verified && r.path === new URL(url).pathname)).toBe(true);
  });

  test.each([
    ['another path', '/tenant-c'],
    ['a path that only starts like the prefix', '/tenant-ab'],
    ['another port', null],
    ['credentials in the URL', 'creds'],
    ['not a URL', 'junk'],
  ])('%s: 400 webhook_not_allowed, nothing stored', async (_, path) => {
    const port = Number(new URL(receiver.url).port);
    const url =
      path === null
        ? `http://127.0.0.1:${port + 1}/tenant-a`
        : path === 'creds'
          ? `${receiver.url.replace('http://', 'http://user:pw@')}/tenant-a`
          : path === 'junk'
            ? 'tenant-a'
            : `${receiver.url}${path}`;
    const before = await rowCounts(t.sql);
    const { status, body } = await t.post({ content: 'not mine', webhook: { url } });
    expect(status).toBe(400);
    expect(body.error.code).toBe('webhook_not_allowed');
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test.each([
    ['webhook is not an object', { webhook: 'http://x' }],
    ['webhook has no url', { webhook: {} }],
    ['webhook has an unknown field', { webhook: { url: 'http://x', secret: 'y' } }],
  ])('%s: 400 invalid_request, nothing stored', async (_, extra) => {
    const before = await rowCounts(t.sql);
    const { status, body } = await t.post({ content: 'bad hook', ...extra });
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('webhook is part of "the same body" for an Idempotency-Key', async () => {
    const key = { 'idempotency-key': `hook-${Date.now()}` };
    const url = `${receiver.url}/tenant-a/one`;
    const first = await t.post({ content: 'same', webhook: { url } }, key);
    expect(first.status).toBe(202);
    const other = await t.post({ content: 'same', webhook: { url: `${url}/two` } }, key);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });
});

describe.skipIf(!redisTestsEnabled())('webhooks: configuration', () => {
  test('no per-message webhooks without WEBHOOK_ALLOWED_URLS: 400 webhook_not_allowed', async () => {
    const t = await startTestApp({ worker: false });
    try {
      const before = await rowCounts(t.sql);
      const { status, body } = await t.post({
        content: 'x',
        webhook: { url: 'https://hooks.example.com/a' },
      });
      expect(status).toBe(400);
      expect(body.error.code).toBe('webhook_not_allowed');
      expect(await rowCounts(t.sql)).toEqual(before);
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('webhooks: the receiver example in docs/webhooks.md', () => {
  test('it verifies what the server sends, and rejects a forged delivery', async () => {
    const port = await freePort();
    const example = Bun.spawn(['bun', 'examples/webhook-receiver.ts'], {
      env: { ...process.env, WEBHOOK_SECRET: SECRET, PORT: String(port) },
      stdout: 'pipe',
      stderr: 'inherit',
    });
    let printed = '';
    const lines = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of example.stdout) printed += decoder.decode(chunk);
    })();
    const llm = await startFakeLlm({ quiet: true });
    const t = await startTestApp({
      env: {
        OPENAI_BASE_URL: llm.url,
        WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
        WEBHOOK_SECRET: SECRET,
      },
    });
    try {
      await waitForValue(
        () => printed,
        (text) => text.includes('webhook receiver on'),
      );
      const { body } = await t.post({ content: 'to the example' });
      const id = (await t.events.waitForTerminal(body.runId)).at(-1)?.eventId as string;
      await deliveryOnce(t, body.runId, 'delivered');
      expect(printed).toContain(`verified ${id} agent.run.completed run ${body.runId} completed`);
      const forged = await fetch(`http://127.0.0.1:${port}/hooks`, {
        method: 'POST',
        headers: {
          'webhook-id': 'evt_forged',
          'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
          'webhook-signature': 'v1,bm90IGEgc2lnbmF0dXJl',
        },
        body: '{"type":"agent.run.completed"}',
      });
      expect(forged.status).toBe(400);
      await waitForValue(
        () => printed,
        (text) => text.includes('rejected'),
      );
      expect(printed).toContain('rejected: No matching signature found');
    } finally {
      await t.close();
      await llm.stop();
      example.kill();
      await lines;
    }
  });
});
