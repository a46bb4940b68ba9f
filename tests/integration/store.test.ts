import { describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import type { RunRequest, Store } from '../../db/store';
import { TEST_DATABASE } from '../../harness/test-database';
import { buildEvent } from '../../src/events/event';
import { noCancel, runRequest, useTestStore } from '../support/store';

/**
 * What several processes on one store rely on, with two stores opened on one database as two
 * processes would (two SQLite connections to one file, or two PostgreSQL pools). Runs on the
 * engine TEST_DATABASE names; `.ci/run` runs it on both.
 */
describe(`one store, two processes (${TEST_DATABASE})`, () => {
  const { stores, reader } = useTestStore('agent-run-store-', 2);
  const [a, b] = stores as [Store, Store];

  /** A request made at `now` that cancels no run. */
  const request = <R>(threadId: string, now: Date, extra: Partial<RunRequest<R>> = {}) =>
    runRequest<R>(threadId, { now, cancelledEvent: noCancel, ...extra });

  test('the relays of two processes claim disjoint outbox rows, and a lease keeps them', async () => {
    const old = new Date(Date.now() - 60_000);
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) => a.insertRunRequest(request(`claim-${i}`, old))),
    );
    const ids = created.map((r) => (r.kind === 'created' ? r.row.id : -1)).sort((x, y) => x - y);
    const before = new Date(Date.now() - 5_000);
    // Many claims at once from both "processes", in small batches.
    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claimPendingOutbox(before, 7, 30_000)),
    );
    const claimed = claims.flat().map((row) => row.id);
    expect(new Set(claimed).size).toBe(claimed.length); // nobody got a row twice
    expect([...claimed].sort((x, y) => x - y)).toEqual(ids); // and every row went to somebody
    for (const batch of claims) {
      expect(batch.map((r) => r.id)).toEqual([...batch.map((r) => r.id)].sort((x, y) => x - y));
    }
    // Leased: nothing is claimable until the lease runs out, and delivered rows never again.
    expect(await b.claimPendingOutbox(before, 100, 30_000)).toEqual([]);
    await a.markOutboxDelivered(ids.slice(0, 20));
    const lapsed = await Promise.all([
      a.claimPendingOutbox(before, 100, -1),
      b.claimPendingOutbox(before, 100, -1),
    ]);
    expect(lapsed.flat()).toEqual([]);
  });

  test('a lapsed lease is claimed again; a delivered row is not', async () => {
    const old = new Date(Date.now() - 60_000);
    const made = await a.insertRunRequest(request('lapse', old));
    if (made.kind !== 'created') throw new Error('expected a created run');
    const before = new Date(Date.now() - 5_000);
    const first = await a.claimPendingOutbox(before, 100, 1); // a 1 ms lease
    expect(first.map((r) => r.id)).toContain(made.row.id);
    await Bun.sleep(5); // let the 1 ms lease lapse (a lease, not a wait for an event)
    // Leased for 1 ms again: once delivered, the row stays out however long ago its lease ran out.
    const again = await b.claimPendingOutbox(before, 100, 1);
    expect(again.map((r) => r.id)).toContain(made.row.id);
    await b.markOutboxDelivered(again.map((r) => r.id));
    await Bun.sleep(5); // let that lease lapse too: only the delivery may keep the row out
    expect(await a.claimPendingOutbox(before, 100, 30_000)).toEqual([]);
  });

  test('one idempotency key sent to two processes at once makes one run', async () => {
    const key = `key-${Date.now()}`;
    const attempts = Array.from({ length: 8 }, (_, i) => {
      const r = request<{ n: number }>(`idem-${i}`, new Date());
      return (i % 2 ? a : b).insertRunRequest({
        ...r,
        idempotency: { key, requestHash: 'same', response: { n: i } },
      });
    });
    const results = await Promise.all(attempts);
    const created = results.filter((r) => r.kind === 'created');
    const replayed = results.filter((r) => r.kind === 'replayed');
    expect(created).toHaveLength(1);
    expect(replayed).toHaveLength(7);
    const first = replayed[0];
    for (const r of replayed) expect(r).toEqual(first as (typeof replayed)[number]);
    const other = await a.insertRunRequest({
      ...request('idem-other', new Date()),
      idempotency: { key, requestHash: 'different', response: {} },
    });
    expect(other).toEqual({ kind: 'conflict' });
  });

  test('a run accepted while the previous one finishes is enqueued exactly once', async () => {
    // Many rounds of the race: the thread's head finishes in one process while the next
    // message is accepted in the other. Exactly one of the two outbox rows must carry the job.
    for (let round = 0; round < 20; round++) {
      const threadId = `chain-${round}-${Date.now()}`;
      const head = await a.insertRunRequest(request(threadId, new Date()));
      if (head.kind !== 'created') throw new Error('expected a created run');
      const headRunId = head.row.runId;
      await a.startRunAttempt({
        runId: headRunId,
        now: new Date(),
        startedEvent: (run) =>
          buildEvent('agent.run.started', { runId: run.id, threadId }, { attempt: run.attempts }),
      });
      const next = request(threadId, new Date());
      const [finished, accepted] = await Promise.all([
        a.finishRun({
          runId: headRunId,
          now: new Date(),
          attempts: 1,
          // A failed run writes no reply: the case where only the thread lock orders the two.
          event: buildEvent(
            'agent.run.failed',
            { runId: headRunId, threadId },
            {
              error: { code: 'llm_unauthorized', message: 'no' },
              attempts: 1,
            },
          ),
          error: { code: 'llm_unauthorized', message: 'no' },
          cancelledEvent: () => {
            throw new Error('the run was not being cancelled');
          },
        }),
        b.insertRunRequest(next),
      ]);
      if (accepted.kind !== 'created') throw new Error('expected a created run');
      // Read back: a finish that comes second hands the job to the still undelivered row.
      const [acceptedNow] = await reader.select(
        sql`select enqueue_run_id from outbox where id = ${accepted.row.id}`,
      );
      const enqueuers = [finished?.row.enqueueRunId, acceptedNow?.enqueue_run_id].filter(
        (id) => id === next.runId,
      );
      expect(enqueuers).toHaveLength(1);
    }
  });
});
