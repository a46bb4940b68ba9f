import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventReader, isTerminal } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../../harness/processes';
import { createTestDatabase } from '../../harness/test-database';
import { redisTestsEnabled } from '../support/redis';

const ROUNDS = 8;

/**
 * Two messages on one thread, racing from two API processes over one store: the thread's lock
 * (PostgreSQL) or its single writer (SQLite) makes `reject` refuse exactly one, and `interrupt`
 * cancel exactly one. The Redis is private, as in multiprocess.test.ts.
 */
describe.skipIf(!redisTestsEnabled())('multitask across two API processes', () => {
  let dir: string;
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let database: { url: string; drop(): Promise<void> };
  let events: EventReader;
  const processes: ServerProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-run-multitask-'));
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    // Slow enough that the first run of a round is still unfinished when the second arrives.
    llm.setDefault({ kind: 'reply', delayMs: 300 });
    database = await createTestDatabase(dir);
    const streamKey = `multitask:${process.pid}:${Date.now().toString(36)}:events`;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_STREAM_KEY: streamKey,
      OPENAI_BASE_URL: llm.url,
    };
    events = new EventReader(redis.url, streamKey);
    processes.push(await spawnServer('api', env), await spawnServer('api', env));
    processes.push(await spawnServer('worker', env));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(10_000)));
    await events?.close();
    await llm?.stop();
    await database?.drop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const a = () => processes[0]?.baseUrl as string;
  const b = () => processes[1]?.baseUrl as string;

  test('reject: of two racing messages, exactly one is accepted', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const threadId = `race-reject-${round}-${Date.now()}`;
      const answers = await Promise.all([
        postMessage(a(), { content: 'from a', threadId, multitask: 'reject' }),
        postMessage(b(), { content: 'from b', threadId, multitask: 'reject' }),
      ]);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).toEqual([202, 409]);
      const accepted = answers.find((answer) => answer.status === 202);
      const refused = answers.find((answer) => answer.status === 409);
      expect(refused?.body.error).toMatchObject({
        code: 'thread_busy',
        details: { runId: accepted?.body.runId },
      });
      const thread = await fetch(`${a()}/api/chat/threads/${threadId}`).then((r) => r.json());
      expect((thread as { messageCount: number }).messageCount).toBe(1);
    }
  }, 60_000);

  test('interrupt: of two racing messages, exactly one is cancelled and the other completes', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const threadId = `race-interrupt-${round}-${Date.now()}`;
      const answers = await Promise.all([
        postMessage(a(), { content: 'from a', threadId, multitask: 'interrupt' }),
        postMessage(b(), { content: 'from b', threadId, multitask: 'interrupt' }),
      ]);
      expect(answers.map((answer) => answer.status)).toEqual([202, 202]);
      const runIds = answers.map((answer) => answer.body.runId as string);
      for (const runId of runIds) await events.waitForTerminal(runId);
      const terminals = runIds
        .map((runId) => events.forRun(runId).filter((e) => isTerminal(e.type)))
        .map((list) => list.map((e) => `${e.type}:${e.payload.by ?? ''}`));
      expect(terminals.flat().sort()).toEqual([
        'agent.run.cancelled:interrupt',
        'agent.run.completed:',
      ]);
    }
  }, 90_000);
});
