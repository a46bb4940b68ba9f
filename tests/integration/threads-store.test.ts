import { describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import type { ThreadCursor, ThreadDetails } from '../../db/store';
import type { Run } from '../../db/types';
import { TEST_DATABASE } from '../../harness/test-database';
import { buildEvent } from '../../src/events/event';
import { newThreadId } from '../../src/ids';
import { acceptRun, cancelledEventOf, claimRun, useTestStore } from '../support/store';

/**
 * Threads as resources in the store: `createThread`, `getThreadDetails`, `listThreads` (order,
 * cursor, metadata filter), `updateThread`, `deleteThread` and `listExpiredThreads`. Runs on the
 * engine TEST_DATABASE names.
 */
describe(`threads as resources in the store (${TEST_DATABASE})`, () => {
  const { store, reader } = useTestStore('agent-run-threads-');

  const create = async (metadata: Record<string, string> = {}, now = new Date()) => {
    const threadId = newThreadId();
    const made = await store.createThread({ threadId, metadata, now });
    if (made.kind !== 'created') throw new Error('expected a created thread');
    return made.thread;
  };

  const deletedEventOf = (threadId: string) => (cancelledRunIds: string[]) =>
    buildEvent('agent.thread.deleted', { runId: '', threadId }, { cancelledRunIds });

  const remove = (threadId: string) =>
    store.deleteThread({
      threadId,
      now: new Date(),
      cancelledEvent: cancelledEventOf,
      deletedEvent: deletedEventOf(threadId),
    });

  /** Every page of `listThreads` for `metadata`, `limit` at a time. */
  const allPages = async (limit: number, metadata: Record<string, string> = {}) => {
    const pages: ThreadDetails[][] = [];
    let after: ThreadCursor | undefined;
    for (;;) {
      const page = await store.listThreads({ limit, after, metadata });
      pages.push(page.threads);
      const last = page.threads.at(-1);
      if (!page.hasMore || !last) {
        expect(page.hasMore).toBe(false);
        return pages;
      }
      expect(page.threads).toHaveLength(limit);
      after = { updatedAt: last.thread.updatedAt, id: last.thread.id };
    }
  };

  const countOf = async (table: string, column: string, value: string) => {
    const [row] = await reader.select(
      sql`select count(*) as n from ${sql.raw(table)} where ${sql.raw(column)} = ${value}`,
    );
    return Number(row?.n);
  };

  test('createThread makes an empty thread with its metadata; a taken id is `exists`', async () => {
    const now = new Date();
    const details = await create({ tenant: 'acme', tier: 'gold' }, now);
    expect(details.busy).toBe(false);
    expect(details.lastRunId).toBeNull();
    expect(details.thread).toMatchObject({
      metadata: { tenant: 'acme', tier: 'gold' },
      messageCount: 0,
      nextSeq: 0,
      title: null,
    });
    expect(details.thread.createdAt.getTime()).toBe(now.getTime());
    expect(details.thread.updatedAt.getTime()).toBe(now.getTime());
    expect(await countOf('thread_metadata', 'thread_id', details.thread.id)).toBe(2);

    const again = await store.createThread({
      threadId: details.thread.id,
      metadata: { other: 'x' },
      now: new Date(),
    });
    expect(again).toEqual({ kind: 'exists' });
    expect((await store.getThread(details.thread.id))?.metadata).toEqual({
      tenant: 'acme',
      tier: 'gold',
    });
    expect(await countOf('thread_metadata', 'thread_id', details.thread.id)).toBe(2);
  });

  test('a thread a message creates has empty metadata', async () => {
    const run = await acceptRun(store, newThreadId());
    const details = await store.getThreadDetails(run.threadId);
    expect(details?.thread.metadata).toEqual({});
    expect(details?.thread.messageCount).toBe(1);
    expect(await countOf('thread_metadata', 'thread_id', run.threadId)).toBe(0);
  });

  test('getThreadDetails: busy while a run is unfinished, lastRunId the newest run', async () => {
    const { thread } = await create();
    expect(await store.getThreadDetails('thr_unknown')).toBeUndefined();
    const first = await acceptRun(store, thread.id);
    const second = await acceptRun(store, thread.id);
    let details = await store.getThreadDetails(thread.id);
    expect(details).toMatchObject({ busy: true, lastRunId: second.id });
    for (const run of [first, second]) {
      const cancelled = await store.cancelRun({
        runId: run.id,
        cancel: { reason: null, by: 'client', requestedAt: new Date().toISOString() },
        now: new Date(),
        cancelledEvent: cancelledEventOf,
      });
      expect(cancelled?.kind).toBe('cancelled');
    }
    details = await store.getThreadDetails(thread.id);
    expect(details).toMatchObject({ busy: false, lastRunId: second.id });
  });

  test('listThreads pages newest first by (updated_at, id): no duplicate, no gap', async () => {
    // Three threads share each millisecond, so the id breaks ties.
    const base = Date.now() + 60_000;
    const made = new Set<string>();
    for (let i = 0; i < 250; i++) {
      const details = await create({ paging: 'yes' }, new Date(base + Math.floor(i / 3)));
      made.add(details.thread.id);
    }
    const pages = await allPages(40);
    const listed = pages.flat();
    const ids = listed.map((d) => d.thread.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of made) expect(ids).toContain(id);
    for (let i = 1; i < listed.length; i++) {
      const [a, b] = [listed[i - 1]?.thread, listed[i]?.thread];
      if (!a || !b) throw new Error('unreachable');
      const ordered =
        a.updatedAt.getTime() > b.updatedAt.getTime() ||
        (a.updatedAt.getTime() === b.updatedAt.getTime() && a.id > b.id);
      expect(ordered).toBe(true);
    }
    // The newest 250 are these, as the page sizes say.
    expect(new Set(ids.slice(0, 250))).toEqual(made);

    // Filtered by metadata the same 250 come, in the same order.
    const filtered = (await allPages(100, { paging: 'yes' })).flat().map((d) => d.thread.id);
    expect(filtered).toEqual(ids.slice(0, 250));
  });

  test('listThreads filters by every metadata key given, and answers with details', async () => {
    const tag = newThreadId();
    const at = (ms: number) => new Date(Date.now() - 10_000 + ms);
    const a = await create({ suite: tag, colour: 'red', size: 'l' }, at(0));
    const b = await create({ suite: tag, colour: 'red', size: 's' }, at(1));
    const c = await create({ suite: tag, colour: 'blue', size: 'l' }, at(2));
    // A message moves its thread to the top.
    const run = await acceptRun(store, a.thread.id, { now: at(3) });
    const list = async (metadata: Record<string, string>) =>
      (await store.listThreads({ limit: 10, metadata })).threads.map((d) => d.thread.id);
    expect(await list({ suite: tag })).toEqual([a.thread.id, c.thread.id, b.thread.id]);
    expect(await list({ suite: tag, colour: 'red' })).toEqual([a.thread.id, b.thread.id]);
    expect(await list({ suite: tag, colour: 'red', size: 'l' })).toEqual([a.thread.id]);
    expect(await list({ suite: tag, colour: 'green' })).toEqual([]);
    const [first] = (await store.listThreads({ limit: 1, metadata: { suite: tag } })).threads;
    expect(first).toMatchObject({ busy: true, lastRunId: run.id });
    const page = await store.listThreads({ limit: 2, metadata: { suite: tag } });
    expect(page.hasMore).toBe(true);
    const [, second] = (await store.listThreads({ limit: 3, metadata: { suite: tag } })).threads;
    expect(second).toMatchObject({ busy: false, lastRunId: null });
  });

  test('a value thousands of threads share filters the same, page after page (walked, not joined, on SQLite)', async () => {
    const common = newThreadId();
    const rare = newThreadId();
    const base = Date.now() - 60_000;
    const made: string[] = [];
    for (let i = 0; i < 2600; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, (_, k) =>
          create(
            (i + k) % 10 === 0 ? { shared: common, tag: rare } : { shared: common },
            new Date(base + i + k),
          ),
        ),
      );
      made.push(...batch.map((d) => d.thread.id));
    }
    const newestFirst = [...made].reverse();
    const pageAll = async (metadata: Record<string, string>) => {
      const seen: string[] = [];
      let after: { updatedAt: Date; id: string } | undefined;
      for (;;) {
        const page = await store.listThreads({ limit: 100, after, metadata });
        seen.push(...page.threads.map((d) => d.thread.id));
        const last = page.threads.at(-1)?.thread;
        if (!page.hasMore || !last) return seen;
        after = { updatedAt: last.updatedAt, id: last.id };
      }
    };
    expect(await pageAll({ shared: common })).toEqual(newestFirst);
    expect(await pageAll({ shared: common, tag: rare })).toEqual(
      newestFirst.filter((_, i) => (made.length - 1 - i) % 10 === 0),
    );
  });

  test('updateThread replaces metadata whole and sets a user title', async () => {
    const tag = newThreadId();
    const { thread } = await create({ suite: tag, stage: 'draft' }, new Date(Date.now() - 1000));
    const now = new Date();
    const updated = await store.updateThread({
      threadId: thread.id,
      metadata: { suite: tag, stage: 'final', owner: 'ann' },
      now,
    });
    expect(updated?.thread.metadata).toEqual({ suite: tag, stage: 'final', owner: 'ann' });
    expect(updated?.thread.updatedAt.getTime()).toBe(now.getTime());
    expect(updated?.thread.title).toBeNull();
    const list = async (metadata: Record<string, string>) =>
      (await store.listThreads({ limit: 10, metadata })).threads.map((d) => d.thread.id);
    expect(await list({ suite: tag, stage: 'draft' })).toEqual([]);
    expect(await list({ suite: tag, stage: 'final' })).toEqual([thread.id]);
    expect(await list({ owner: 'ann', suite: tag })).toEqual([thread.id]);
    expect(await countOf('thread_metadata', 'thread_id', thread.id)).toBe(3);

    const titled = await store.updateThread({ threadId: thread.id, title: 'Plans', now });
    expect(titled?.thread).toMatchObject({ title: 'Plans', titleSource: 'user' });
    expect(titled?.thread.metadata).toEqual({ suite: tag, stage: 'final', owner: 'ann' });

    const emptied = await store.updateThread({ threadId: thread.id, metadata: {}, now });
    expect(emptied?.thread).toMatchObject({ metadata: {}, title: 'Plans' });
    expect(await countOf('thread_metadata', 'thread_id', thread.id)).toBe(0);

    expect(await store.updateThread({ threadId: 'thr_unknown', title: 'x', now })).toBeUndefined();
  });

  test('deleteThread cancels its unfinished runs and leaves only their events and its own', async () => {
    const { thread } = await create({ doomed: 'yes' });
    const threadId = thread.id;
    const finishedRun = await acceptRun(store, threadId);
    await store.cancelRun({
      runId: finishedRun.id,
      cancel: { reason: null, by: 'client', requestedAt: new Date().toISOString() },
      now: new Date(),
      cancelledEvent: cancelledEventOf,
    });
    const running: Run = await claimRun(store, (await acceptRun(store, threadId)).id);
    const queued = await acceptRun(store, threadId, {
      idempotency: {
        key: `key-${threadId}`,
        requestHash: 'h',
        response: { threadId, runId: 'r', status: 'queued' },
      },
    });
    // Another thread's key and rows stay.
    const other = await acceptRun(store, newThreadId(), {
      idempotency: { key: `key-other-${threadId}`, requestHash: 'h', response: { threadId: 'x' } },
    });

    const deletion = await remove(threadId);
    if (!deletion) throw new Error('expected a deletion');
    expect(deletion.cancelledRunIds).toEqual([running.id, queued.id]);
    expect(deletion.cancelling).toEqual([running.id]);
    expect(deletion.runIds).toEqual([finishedRun.id, running.id, queued.id]);
    expect(deletion.rows.map((row) => [row.type, row.runId, row.threadId])).toEqual([
      ['agent.run.cancelled', running.id, threadId],
      ['agent.run.cancelled', queued.id, threadId],
      ['agent.thread.deleted', '', threadId],
    ]);
    for (const row of deletion.rows) expect(row.enqueueRunId).toBeNull();
    expect(JSON.parse(deletion.rows[0]?.payload ?? '')).toMatchObject({ by: 'thread_deleted' });
    expect(JSON.parse(deletion.rows[2]?.payload ?? '')).toEqual({
      cancelledRunIds: [running.id, queued.id],
    });

    // The database itself: nothing of the thread but the returned rows.
    for (const [table, column] of [
      ['threads', 'id'],
      ['messages', 'thread_id'],
      ['runs', 'thread_id'],
      ['thread_metadata', 'thread_id'],
    ] as const) {
      expect(await countOf(table, column, threadId)).toBe(0);
    }
    expect(await countOf('idempotency_keys', 'key', `key-${threadId}`)).toBe(0);
    expect(await countOf('idempotency_keys', 'key', `key-other-${threadId}`)).toBe(1);
    const outbox = await reader.select(
      sql`select id from outbox where thread_id = ${threadId} order by id`,
    );
    expect(outbox.map((row) => Number(row.id))).toEqual(deletion.rows.map((row) => row.id));
    expect(await store.getRun(other.id)).toBeDefined();
    expect(await countOf('outbox', 'thread_id', other.threadId)).toBe(1);

    expect(await store.getThreadDetails(threadId)).toBeUndefined();
    expect(await remove(threadId)).toBeUndefined();

    // A new message with the deleted id starts a new, empty thread.
    const fresh = await acceptRun(store, threadId);
    const details = await store.getThreadDetails(threadId);
    expect(details?.thread).toMatchObject({ messageCount: 1, metadata: {}, title: null });
    expect(details).toMatchObject({ busy: true, lastRunId: fresh.id });
    expect(fresh.seq).toBe(0);
  });

  test('deleteThread of a thread without runs, and of an unknown one', async () => {
    const { thread } = await create();
    const deletion = await remove(thread.id);
    expect(deletion).toMatchObject({ cancelling: [], runIds: [], cancelledRunIds: [] });
    expect(deletion?.rows.map((row) => row.type)).toEqual(['agent.thread.deleted']);
    expect(await remove('thr_unknown')).toBeUndefined();
  });

  test('listExpiredThreads: ids not updated since `before`, oldest first', async () => {
    const long = Date.UTC(2001, 0, 1);
    const old = [];
    for (let i = 0; i < 3; i++) old.push((await create({}, new Date(long + i * 1000))).thread.id);
    await create({}, new Date(long + 10_000));
    expect(await store.listExpiredThreads(new Date(long + 5000), 10)).toEqual(old);
    expect(await store.listExpiredThreads(new Date(long + 5000), 2)).toEqual(old.slice(0, 2));
    expect(await store.listExpiredThreads(new Date(long), 10)).toEqual([]);
  });
});
