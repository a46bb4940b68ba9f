import { afterAll, beforeAll } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../db/client';
import type { RunFinish, RunRequest, Store } from '../../db/store';
import type { MemoryReport, Run } from '../../db/types';
import { openSql, type SqlReader } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { buildEvent } from '../../src/events/event';
import { newMessageId, newRunId } from '../../src/ids';

/**
 * The setup the store's integration tests share: a database of their own and builders for the
 * requests and runs they start from. Runs on the engine TEST_DATABASE names.
 */

/** Stands in for a value made in `beforeAll`: forwards every property to it once it exists. */
function late<T extends object>(get: () => T | undefined, what: string): T {
  return new Proxy({} as T, {
    get(_, key) {
      const target = get();
      if (!target) throw new Error(`${what} is used before beforeAll opened it`);
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Registers, in the calling describe, a `beforeAll` that makes a temp dir and a fresh database
 * (createTestDatabase) and opens `count` stores on it (pool size 4) and a SQL reader, and the
 * `afterAll` that closes them and drops both. Returns stand-ins usable from the tests on:
 * `store` is the first of `stores`.
 */
export function useTestStore(prefix: string, count = 1) {
  let dir: string | undefined;
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  const opened: Store[] = [];
  let reader: SqlReader | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    database = await createTestDatabase(dir);
    for (let i = 0; i < count; i++) opened.push(await openStore(database.url, { poolSize: 4 }));
    reader = await openSql(database.url);
  });
  afterAll(async () => {
    for (const store of opened) await store.close();
    await reader?.close();
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const stores = Array.from({ length: count }, (_, i) => late(() => opened[i], `store ${i}`));
  return {
    store: stores[0] as Store,
    stores,
    reader: late(() => reader, 'the reader'),
  };
}

/** The cancelled event of `run`, as a request's or finish's `cancelledEvent`. */
export const cancelledEventOf = (run: Run) =>
  buildEvent(
    'agent.run.cancelled',
    { runId: run.id, threadId: run.threadId },
    { reason: null, by: run.cancel?.by ?? 'client', attempts: run.attempts },
  );

/** A `cancelledEvent` for requests that must cancel no run: it throws. */
export const noCancel = (): never => {
  throw new Error('no run is cancelled here');
};

/**
 * A request for a new run on `threadId`: 'hello' (5 tokens) to model 'm', enqueued, no tools,
 * with its requested event. `extra` overrides any field; its runId, messageId and content are
 * also the requested event's.
 */
export const runRequest = <R = unknown>(threadId: string, extra: Partial<RunRequest<R>> = {}) => {
  const { runId = newRunId(), messageId = newMessageId(), content = 'hello' } = extra;
  return {
    threadId,
    messageId,
    runId,
    content,
    tokens: 5,
    model: 'm',
    multitask: 'enqueue' as const,
    tools: [],
    clientTools: [],
    webhookUrl: null,
    now: new Date(),
    cancelledEvent: cancelledEventOf,
    event: buildEvent(
      'agent.run.requested',
      { runId, threadId },
      { messageId, model: 'm', content },
    ),
    ...extra,
  } satisfies RunRequest<R>;
};

/** Accepts a message (runRequest of `threadId` and `extra`) and returns its run as stored. */
export async function acceptRun(
  store: Store,
  threadId: string,
  extra: Partial<RunRequest<unknown>> = {},
): Promise<Run> {
  const input = runRequest(threadId, extra);
  const made = await store.insertRunRequest(input);
  if (made.kind !== 'created') throw new Error(`expected a created run, got ${made.kind}`);
  return (await store.getRun(input.runId)) as Run;
}

/** Claims the attempt of an accepted run and returns it running. */
export async function claimRun(store: Store, runId: string): Promise<Run> {
  const attempt = await store.startRunAttempt({
    runId,
    now: new Date(),
    startedEvent: (r) =>
      buildEvent(
        'agent.run.started',
        { runId: r.id, threadId: r.threadId },
        { attempt: r.attempts },
      ),
  });
  if (attempt?.run.status !== 'running') throw new Error('expected a running run');
  return attempt.run;
}

/** A budget report of zeros, for events built by hand: the store keeps what it is given. */
export const emptyReport: MemoryReport = {
  contextTokens: 0,
  budgetTokens: 0,
  systemTokens: 0,
  summaryTokens: 0,
  toolsTokens: 0,
  windowTokens: 0,
  windowMessages: 0,
  summarisedMessages: 0,
};

/**
 * Completes a run as its worker would: the reply at `reply.position` (its text 'the answer'
 * unless given) and its `agent.run.completed` row. `extra` adds to the finish (a report, counts).
 */
export function completeRun(
  store: Store,
  run: Run,
  reply: { position: number; content?: string; tokens?: number; toolCalls?: number },
  extra: Partial<RunFinish> = {},
) {
  const id = newMessageId();
  const content = reply.content ?? 'the answer';
  return store.finishRun({
    runId: run.id,
    now: new Date(),
    attempts: run.attempts,
    event: buildEvent(
      'agent.run.completed',
      { runId: run.id, threadId: run.threadId },
      {
        messageId: id,
        model: 'm',
        content,
        usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
        attempts: run.attempts,
        durationMs: 1,
        steps: 1,
        toolCalls: reply.toolCalls ?? 0,
        memory: emptyReport,
      },
    ),
    reply: { id, content, position: reply.position, tokens: reply.tokens ?? 3 },
    cancelledEvent: cancelledEventOf,
    ...extra,
  });
}
