import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { EventReader, isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { type ProcessGroup, postMessage, startProcessGroup } from '../../harness/processes';
import { openSql, type SqlReader } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import { redisTestsEnabled } from '../support/redis';

/** 400 pieces, 50 ms apart: a reply that would take twenty seconds to stream. */
const SLOW = {
  kind: 'stream' as const,
  chunks: Array.from({ length: 400 }, (_, i) => `${i} `),
  delayMs: 50,
};

/**
 * A cancel crosses processes: the HTTP request lands on the API process, the run is on a worker
 * process, and only Redis (and the database) connect them. The Redis is private, as in
 * multiprocess.test.ts: BullMQ's key prefix cannot be set by environment.
 */
describe.skipIf(!redisTestsEnabled())('cancel across processes', () => {
  let dir: string;
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let database: { url: string; drop(): Promise<void> };
  let events: EventReader;
  let group: ProcessGroup;
  let reader: SqlReader;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-run-cancel-'));
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    llm.setDefault(SLOW);
    database = await createTestDatabase(dir);
    const streamKey = `cancel:${process.pid}:${Date.now().toString(36)}:events`;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_STREAM_KEY: streamKey,
      OPENAI_BASE_URL: llm.url,
      // A dead worker's job is taken over in seconds (lock 3 s, checked every 0.5 s).
      RUN_LOCK_MS: '3000',
      RUN_STALLED_CHECK_MS: '500',
    };
    events = new EventReader(redis.url, streamKey);
    group = await startProcessGroup({ workers: 1, env });
    reader = await openSql(database.url);
  }, 60_000);

  afterAll(async () => {
    await reader?.close();
    await group?.stop(10_000);
    await events?.close();
    await llm?.stop();
    await database?.drop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cancel = (runId: string) =>
    fetch(`${group.api.baseUrl}/api/chat/runs/${runId}/cancel`, { method: 'POST' });
  const run = async (runId: string) =>
    (await (await fetch(`${group.api.baseUrl}/api/chat/runs/${runId}`)).json()) as {
      status: string;
      reply: unknown;
    };

  test('a cancel sent to the API process stops the model call on the worker process', async () => {
    const calls = llm.requests.length;
    const { body } = await postMessage(group.api.baseUrl, { content: 'stop me' });
    const call = (await llm.waitForRequests(calls + 1))[calls];
    await waitForValue(
      () => call?.chunksSent ?? 0,
      (sent) => sent >= 3,
    );
    const response = await cancel(body.runId);
    const acceptedAt = Date.now();
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ runId: body.runId, status: 'cancelling' });
    const closedAt = await waitForValue(
      () => call?.closedAt,
      (at) => at !== undefined,
    );
    expect(closedAt).toBeDefined();
    console.log(
      `cancel across processes: the model's connection closed ${(closedAt ?? 0) - acceptedAt} ms after the 202`,
    );
    const runEvents = await events.waitForTerminal(body.runId);
    expect(runEvents.filter((e) => isTerminal(e.type)).map((e) => e.type)).toEqual([
      'agent.run.cancelled',
    ]);
    expect(await run(body.runId)).toMatchObject({ status: 'cancelled', reply: null });
  });

  test('a worker killed while it cancels: the run still ends cancelled, once', async () => {
    const calls = llm.requests.length;
    const { body } = await postMessage(group.api.baseUrl, { content: 'cancel, then crash' });
    await llm.waitForRequests(calls + 1);
    // The attempt's `started` goes out while the model is called, and its delivery mark is a
    // write: frozen inside it, the worker would hold SQLite's write lock, and the cancel would
    // be refused 503 (store_unavailable, as documented). Freeze it once its rows are out.
    const pending = sql`select count(*) as n from outbox
      where run_id = ${body.runId} and delivered_at is null`;
    await waitForValue(
      async () => Number((await reader.select(pending))[0]?.n),
      (n) => n === 0,
    );
    const victim = group.workers[0];
    if (!victim) throw new Error('no worker');
    // Frozen, the worker can neither hear the cancel nor renew its lock; then it dies.
    victim.proc.kill('SIGSTOP');
    try {
      const response = await cancel(body.runId);
      expect(await response.json()).toEqual({ runId: body.runId, status: 'cancelling' });
      expect((await run(body.runId)).status).toBe('cancelling');
    } finally {
      await victim.kill('SIGKILL');
    }
    // Another worker takes the stalled job over and ends the run.
    await group.addWorker();
    const runEvents = await events.waitForTerminal(body.runId, 60_000);
    const terminals = runEvents.filter((e) => isTerminal(e.type));
    expect(terminals.map((e) => e.type)).toEqual(['agent.run.cancelled']);
    expect(terminals[0]?.payload).toMatchObject({ by: 'client', attempts: 1 });
    expect(await run(body.runId)).toMatchObject({ status: 'cancelled', reply: null });
    // The new worker made no model call for it.
    expect(llm.requests).toHaveLength(calls + 1);
  }, 90_000);
});
