import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

describe.skipIf(!redisTestsEnabled())('Idempotency-Key', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());

  test('the same key and body return the first response and create nothing', async () => {
    const first = await t.post({ content: 'pay once' }, { 'idempotency-key': 'order-1' });
    const before = await rowCounts(t.sql);
    const again = await t.post({ content: 'pay once' }, { 'idempotency-key': 'order-1' });
    expect(first.status).toBe(202);
    expect(again).toEqual(first);
    expect(await rowCounts(t.sql)).toEqual(before);
    expect(t.events.entries.filter((e) => e.runId === first.body.runId).length).toBeLessThanOrEqual(
      1,
    );
  });

  test('the same key with another body is a 409 and creates nothing', async () => {
    await t.post({ content: 'original' }, { 'idempotency-key': 'order-2' });
    const before = await rowCounts(t.sql);
    const reused = await t.post({ content: 'different' }, { 'idempotency-key': 'order-2' });
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
    const otherModel = await t.post(
      { content: 'original', model: 'other' },
      { 'idempotency-key': 'order-2' },
    );
    expect(otherModel.status).toBe(409);
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('concurrent requests with one key make one run', async () => {
    const before = await rowCounts(t.sql);
    const answers = await Promise.all(
      Array.from({ length: 25 }, () =>
        t.post({ content: 'at the same time' }, { 'idempotency-key': 'race-1' }),
      ),
    );
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([202]));
    expect(new Set(answers.map((a) => a.body.runId)).size).toBe(1);
    const after = await rowCounts(t.sql);
    expect(after.runs - before.runs).toBe(1);
  });

  test.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['with a space', 'has space'],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\tb'],
  ])('a key that is %s is a 400', async (_name, key) => {
    const before = await rowCounts(t.sql);
    const response = await t.request('/api/chat/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ content: 'hi' }),
    });
    // An empty header value reaches us as an empty string: still not a valid key.
    expect(response.status).toBe(400);
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('255 visible characters are fine', async () => {
    const key = `${'!~'.repeat(127)}x`;
    expect((await t.post({ content: 'long key' }, { 'idempotency-key': key })).status).toBe(202);
  });

  test('keys live 24 hours, then the reconciler purges them', async () => {
    const first = await t.post({ content: 'old' }, { 'idempotency-key': 'expiring' });
    await t.reconciler.sweep(Date.now() + 23 * 3600 * 1000);
    expect((await t.post({ content: 'old' }, { 'idempotency-key': 'expiring' })).body).toEqual(
      first.body,
    );
    await t.reconciler.sweep(Date.now() + 26 * 3600 * 1000);
    const fresh = await t.post({ content: 'old' }, { 'idempotency-key': 'expiring' });
    expect(fresh.status).toBe(202);
    expect(fresh.body.runId).not.toBe(first.body.runId);
  });
});
