import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { runStreamKey } from '../../src/events/stream-writer';
import { createLogger } from '../../src/logger';
import { type RunningRoles, startRoles } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { backdateThread, rowCounts, rowsOfThread } from '../support/rows';

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

const createThread = (t: TestApp, body?: unknown) =>
  t.call('/api/chat/threads', body === undefined ? { method: 'POST' } : json('POST', body));

/** Every page of a list, following nextCursor: the thread ids in the order served. */
async function pageThrough(t: TestApp, query: string, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const at: string = cursor ? `&cursor=${cursor}` : '';
    const page = await t.call(`/api/chat/threads?limit=${limit}${query}${at}`);
    expect(page.status).toBe(200);
    expect(page.body.threads.length).toBeLessThanOrEqual(limit);
    ids.push(...page.body.threads.map((thread: { id: string }) => thread.id));
    cursor = page.body.nextCursor;
    if (cursor === null) return ids;
  }
  throw new Error('the list did not end');
}

describe.skipIf(!redisTestsEnabled())('threads as resources', () => {
  let t: TestApp;
  // No worker: runs stay queued, so a thread with a message stays busy.
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());

  test('create without an id: 201, a generated thr_ id, an empty idle thread', async () => {
    const created = await createThread(t, { metadata: { customer: 'cus_1' } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^thr_[a-z0-9]{24}$/),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      messageCount: 0,
      title: null,
      metadata: { customer: 'cus_1' },
      status: 'idle',
      lastRunId: null,
      summary: null,
      summaryThroughMessageId: null,
    });
    expect((await t.call(`/api/chat/threads/${created.body.id}`)).body).toEqual(created.body);
    // No body at all is a thread without metadata.
    const bare = await createThread(t);
    expect(bare.status).toBe(201);
    expect(bare.body.metadata).toEqual({});
  });

  test('create with an id: that id; again: 409 thread_exists, nothing changed', async () => {
    const threadId = `support-${Date.now()}`;
    const created = await createThread(t, { threadId, metadata: { a: '1' } });
    expect(created.status).toBe(201);
    expect(created.body.id).toBe(threadId);
    const before = await rowCounts(t.sql);
    const again = await createThread(t, { threadId, metadata: { a: '2' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('thread_exists');
    expect(await rowCounts(t.sql)).toEqual(before);
    expect((await t.call(`/api/chat/threads/${threadId}`)).body.metadata).toEqual({ a: '1' });
  });

  test.each([
    ['a bad id', { threadId: 'no spaces' }, 400],
    ['too many metadata keys', { metadata: manyKeys(17) }, 400],
    ['a bad metadata key', { metadata: { 'a b': 'x' } }, 400],
    ['a long metadata value', { metadata: { a: 'x'.repeat(513) } }, 400],
    ['a metadata value that is not text', { metadata: { a: 1 } }, 400],
    ['a NUL in a value', { metadata: { a: 'x\u0000' } }, 400],
    ['an unknown field', { title: 'no' }, 400],
    ['malformed JSON', '{"metadata": ', 400],
  ])('create with %s: 400, nothing stored', async (_name, body, status) => {
    const before = await rowCounts(t.sql);
    const response = await createThread(t, body);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe('invalid_request');
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('create: a wrong content type is a 415, a body too large a 413', async () => {
    const wrongType = await t.request('/api/chat/threads', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(wrongType.status).toBe(415);
    const big = await createThread(t, { metadata: { a: 'x'.repeat(2_000_000) } });
    expect(big.status).toBe(413);
  });

  test('list: ~300 threads paged with no duplicate and no gap, newest first; metadata filters', async () => {
    const batch = `b${Date.now()}`;
    const made: string[] = [];
    for (let i = 0; i < 300; i++) {
      const created = await createThread(t, {
        metadata: {
          batch,
          parity: i % 2 === 0 ? 'even' : 'odd',
          ...(i === 7 ? { pick: 'me' } : {}),
        },
      });
      expect(created.status).toBe(201);
      made.push(created.body.id);
    }
    for (const limit of [1, 7, 100]) {
      const ids = await pageThrough(t, `&metadata.batch=${batch}`, limit);
      expect(ids).toHaveLength(300);
      expect(new Set(ids).size).toBe(300);
      expect(new Set(ids)).toEqual(new Set(made));
    }
    // Most recently updated first: touching the first-made one moves it to the front.
    const patched = await t.call(`/api/chat/threads/${made[0]}`, json('PATCH', { title: 'top' }));
    expect(patched.status).toBe(200);
    const first = await t.call(`/api/chat/threads?limit=1&metadata.batch=${batch}`);
    expect(first.body.threads.map((x: { id: string }) => x.id)).toEqual([made[0]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    // Every filter must match.
    const even = await pageThrough(t, `&metadata.batch=${batch}&metadata.parity=even`, 40);
    expect(even).toHaveLength(150);
    const picked = await t.call(`/api/chat/threads?metadata.batch=${batch}&metadata.pick=me`);
    expect(picked.body).toEqual({
      threads: [expect.objectContaining({ id: made[7] })],
      nextCursor: null,
    });
    const none = await t.call(`/api/chat/threads?metadata.batch=${batch}&metadata.pick=you`);
    expect(none.body).toEqual({ threads: [], nextCursor: null });
    // The default page is 20.
    const plain = await t.call(`/api/chat/threads?metadata.batch=${batch}`);
    expect(plain.body.threads).toHaveLength(20);
  });

  test.each([
    ['a cursor that is not base64url JSON', 'cursor=%%%', 'invalid_cursor'],
    ['a cursor of JSON without the fields', `cursor=${b64({ id: 1 })}`, 'invalid_cursor'],
    ['a cursor with a bad date', `cursor=${b64({ at: 'soon', id: 'x' })}`, 'invalid_cursor'],
    ['garbage', 'cursor=abc', 'invalid_cursor'],
    ['a limit of 0', 'limit=0', 'invalid_request'],
    ['a limit of 101', 'limit=101', 'invalid_request'],
    ['a bad metadata key', 'metadata.a%20b=1', 'invalid_request'],
    ['an unknown parameter', 'status=busy', 'invalid_request'],
  ])('list with %s: 400', async (_name, query, code) => {
    const response = await t.call(`/api/chat/threads?${query}`);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe(code);
  });

  test('patch metadata and title: metadata replaced whole, title trimmed, updatedAt moves', async () => {
    const created = await createThread(t, { metadata: { a: '1', b: '2' } });
    const id = created.body.id;
    await Bun.sleep(5);
    const patched = await t.call(
      `/api/chat/threads/${id}`,
      json('PATCH', { metadata: { c: '3' } }),
    );
    expect(patched.status).toBe(200);
    expect(patched.body.metadata).toEqual({ c: '3' });
    expect(Date.parse(patched.body.updatedAt)).toBeGreaterThan(Date.parse(created.body.updatedAt));
    const titled = await t.call(
      `/api/chat/threads/${id}`,
      json('PATCH', { title: '  My title  ' }),
    );
    expect(titled.body).toMatchObject({ title: 'My title', metadata: { c: '3' } });
    // The old metadata no longer finds it; the new one does.
    const byOld = await t.call('/api/chat/threads?metadata.a=1&metadata.b=2');
    expect(byOld.body.threads.map((x: { id: string }) => x.id)).not.toContain(id);
    const byNew = await t.call('/api/chat/threads?metadata.c=3');
    expect(byNew.body.threads.map((x: { id: string }) => x.id)).toContain(id);
    const cleared = await t.call(`/api/chat/threads/${id}`, json('PATCH', { metadata: {} }));
    expect(cleared.body).toMatchObject({ metadata: {}, title: 'My title' });
  });

  test.each([
    ['an empty body', {}],
    ['only nulls', { metadata: null, title: null }],
    ['too many keys', { metadata: manyKeys(17) }],
    ['a bad key', { metadata: { ключ: 'x' } }],
    ['a long value', { metadata: { a: 'x'.repeat(513) } }],
    ['an unpaired surrogate', { metadata: { a: '\ud800' } }],
    ['a blank title', { title: '   ' }],
    ['a title of 201 characters', { title: 'x'.repeat(201) }],
    ['an unknown field', { name: 'x' }],
  ])('patch with %s: 400, nothing changed', async (_name, body) => {
    const created = await createThread(t, { metadata: { keep: 'me' } });
    const id = created.body.id;
    const response = await t.call(`/api/chat/threads/${id}`, json('PATCH', body));
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
    expect((await t.call(`/api/chat/threads/${id}`)).body).toEqual(created.body);
  });

  test('a title of 200 characters is fine; an unknown thread is a 404 everywhere', async () => {
    const created = await createThread(t);
    const ok = await t.call(
      `/api/chat/threads/${created.body.id}`,
      json('PATCH', { title: 'é'.repeat(200) }),
    );
    expect(ok.status).toBe(200);
    const unknown = '/api/chat/threads/nope-not-here';
    expect((await t.call(unknown)).status).toBe(404);
    expect((await t.call(unknown, json('PATCH', { title: 'x' }))).status).toBe(404);
    const deleted = await t.call(unknown, { method: 'DELETE' });
    expect(deleted.status).toBe(404);
    expect(deleted.body.error.code).toBe('not_found');
  });

  test('GET: busy with its newest run while a run is queued', async () => {
    const created = await createThread(t, { metadata: { kind: 'busy' } });
    const posted = await t.post({ content: 'hello', threadId: created.body.id });
    expect(posted.status).toBe(202);
    const view = await t.call(`/api/chat/threads/${created.body.id}`);
    expect(view.body).toMatchObject({
      status: 'busy',
      lastRunId: posted.body.runId,
      messageCount: 1,
      metadata: { kind: 'busy' },
    });
    const second = await t.post({ content: 'again', threadId: created.body.id });
    expect((await t.call(`/api/chat/threads/${created.body.id}`)).body.lastRunId).toBe(
      second.body.runId,
    );
  });
});

describe.skipIf(!redisTestsEnabled())('deleting a thread', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('a running and a queued run: both cancelled by thread_deleted, then agent.thread.deleted; everything gone', async () => {
    llm.setDefault({ kind: 'stall' });
    const threadId = `doomed-${Date.now()}`;
    const created = await createThread(t, { threadId, metadata: { doomed: 'yes' } });
    expect(created.status).toBe(201);
    const running = await t.post(
      { content: 'think forever', threadId },
      { 'idempotency-key': `k-${threadId}` },
    );
    const queued = await t.post({ content: 'wait your turn', threadId });
    await llm.waitForRequests(1);
    await waitForValue(
      async () => (await t.call(`/api/chat/runs/${running.body.runId}`)).body.status,
      (status) => status === 'running',
    );
    const runIds = [running.body.runId, queued.body.runId];
    // The running run's stream exists (its started event).
    const streams = runIds.map((runId) => runStreamKey(t.deps.stream, runId));
    expect(await t.deps.redis.exists(streams[0] as string)).toBe(1);

    const response = await t.request(`/api/chat/threads/${threadId}`, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');

    const events = await t.events.waitFor(
      (all) => all.some((e) => e.type === 'agent.thread.deleted' && e.threadId === threadId),
      'agent.thread.deleted',
    );
    const ofThread = events.filter((e) => e.threadId === threadId);
    const cancelled = ofThread.filter((e) => e.type === 'agent.run.cancelled');
    expect(cancelled.map((e) => e.runId).sort()).toEqual([...runIds].sort());
    for (const event of cancelled) expect(event.payload.by).toBe('thread_deleted');
    const deleted = ofThread.find((e) => e.type === 'agent.thread.deleted');
    expect(deleted?.runId).toBe('');
    expect([...(deleted?.payload.cancelledRunIds ?? [])].sort()).toEqual([...runIds].sort());
    // The deletion comes after both cancels.
    expect(ofThread.at(-1)?.type).toBe('agent.thread.deleted');

    expect((await t.call(`/api/chat/threads/${threadId}`)).status).toBe(404);
    expect((await t.call(`/api/chat/runs/${running.body.runId}`)).status).toBe(404);
    expect((await t.call(`/api/chat/threads/${threadId}/messages`)).status).toBe(404);
    const rows = await rowsOfThread(t.sql, threadId);
    expect(rows).toMatchObject({ threads: 0, metadata: 0, messages: 0, runs: 0 });
    expect([...new Set(rows.outbox)].sort()).toEqual([
      'agent.run.cancelled',
      'agent.thread.deleted',
    ]);
    const [key] = await t.sql.select(
      sql`select count(*) as n from idempotency_keys where key = ${`k-${threadId}`}`,
    );
    expect(Number(key?.n)).toBe(0);
    // The run streams are gone, and the queued run's job.
    expect(await t.deps.redis.exists(...streams)).toBe(0);
    expect(await t.deps.queue.getJob(queued.body.runId)).toBeUndefined();
    // Deleting again: 404.
    expect((await t.call(`/api/chat/threads/${threadId}`, { method: 'DELETE' })).status).toBe(404);

    // A new message with the same id starts a fresh thread.
    llm.setDefault({ kind: 'reply', content: 'fresh' });
    const fresh = await t.post({ content: 'hello again', threadId });
    expect(fresh.status).toBe(202);
    await t.events.waitForTerminal(fresh.body.runId);
    const view = await t.call(`/api/chat/threads/${threadId}`);
    expect(view.body).toMatchObject({
      id: threadId,
      metadata: {},
      messageCount: 2,
      status: 'idle',
    });
    const messages = await t.call(`/api/chat/threads/${threadId}/messages`);
    expect(messages.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'hello again',
      'fresh',
    ]);
  });
});

describe.skipIf(!redisTestsEnabled())('the retention sweep', () => {
  let t: TestApp;
  let other: RunningRoles;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, env: { THREAD_RETENTION_DAYS: '1' } });
    // A second process on the same database and Redis: its sweeper races the first.
    other = await startRoles(t.config, {
      roles: [],
      overrides: { logger: createLogger('silent') },
    });
  });
  afterAll(async () => {
    await other.stop();
    await t.close();
  });

  test('two processes sweeping at once delete an expired thread once; a fresh one stays', async () => {
    const old = await createThread(t, { metadata: { age: 'old' } });
    const posted = await t.post({ content: 'long ago', threadId: old.body.id });
    const fresh = await createThread(t, { metadata: { age: 'new' } });
    await backdateThread(t.sql, old.body.id, 2 * 24 * 3600 * 1000);

    const [a, b] = await Promise.all([t.retention.sweep(), other.retention.sweep()]);
    expect((a?.deleted ?? 0) + (b?.deleted ?? 0)).toBe(1);

    const events = await t.events.waitFor(
      (all) => all.some((e) => e.type === 'agent.thread.deleted' && e.threadId === old.body.id),
      'agent.thread.deleted',
    );
    // A marker after it: anything a second deletion sent would be on the stream before it.
    const marker = await t.post({ content: 'marker' });
    await t.events.waitFor((all) => all.some((e) => e.runId === marker.body.runId));
    const deletions = events.filter(
      (e) => e.type === 'agent.thread.deleted' && e.threadId === old.body.id,
    );
    expect(deletions).toHaveLength(1);
    expect(deletions[0]?.payload.cancelledRunIds).toEqual([posted.body.runId]);
    const cancelled = events.filter(
      (e) => e.runId === posted.body.runId && e.type === 'agent.run.cancelled',
    );
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]?.payload.by).toBe('thread_deleted');

    expect((await t.call(`/api/chat/threads/${old.body.id}`)).status).toBe(404);
    expect((await t.call(`/api/chat/threads/${fresh.body.id}`)).status).toBe(200);
    // Nothing left to sweep.
    expect(await t.retention.sweep()).toEqual({ deleted: 0, gone: 0, failed: 0 });
  });
});

function manyKeys(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 'v']));
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
