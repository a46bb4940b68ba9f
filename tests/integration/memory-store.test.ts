import { describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import type { Event, NewStepMessage } from '../../db/store';
import type { MemoryReport, Message, Run, TitleSource } from '../../db/types';
import { TEST_DATABASE } from '../../harness/test-database';
import { newEventId, newMessageId, newThreadId, newToolCallId } from '../../src/ids';
import { rowCounts } from '../support/rows';
import { acceptRun, claimRun, completeRun, useTestStore } from '../support/store';

/**
 * The store's half of token budgets and titles: each message's `tokens` stored where it is
 * written and read back, `runs.memory` from commitStep and finishRun, the summary's tokens, and
 * `saveTitle` (a model title once, a user's always). Runs on the engine TEST_DATABASE names;
 * `.ci/run` runs it on both.
 */
describe(`token budgets and titles in the store (${TEST_DATABASE})`, () => {
  const { store, reader } = useTestStore('agent-run-memory-');

  /** Accepts a message of `tokens` tokens and claims its run's attempt: a running run. */
  const running = async (threadId: string, tokens = 9) => {
    const messageId = newMessageId();
    const accepted = await acceptRun(store, threadId, {
      messageId,
      content: 'hello there',
      tokens,
    });
    return { run: await claimRun(store, accepted.id), messageId };
  };

  const report = (windowTokens: number): MemoryReport => ({
    contextTokens: 128_000,
    budgetTokens: 100_000,
    systemTokens: 12,
    summaryTokens: 0,
    toolsTokens: 40,
    windowTokens,
    windowMessages: 3,
    summarisedMessages: 0,
  });

  /** A step: the call asking for one tool, and its result. */
  const step = (tokens: { call: number; result: number }): NewStepMessage[] => {
    const toolCallId = newToolCallId();
    return [
      {
        id: newMessageId(),
        position: 0,
        role: 'assistant',
        content: '',
        toolCalls: [{ toolCallId, name: 'weather', arguments: '{"city":"Paris"}' }],
        tokens: tokens.call,
      },
      {
        id: newMessageId(),
        position: 1,
        role: 'tool',
        content: 'sunny',
        toolCallId,
        name: 'weather',
        isError: false,
        tokens: tokens.result,
      },
    ];
  };

  const finish = (run: Run, reply: { tokens: number; position: number }, memory?: MemoryReport) =>
    completeRun(store, run, { ...reply, toolCalls: 1 }, memory ? { memory } : {});

  const tokensOf = (messages: Message[]) =>
    messages.map((m): [string, number | null] => [m.role, m.tokens]);
  const rawMemory = async (runId: string) => {
    const [row] = await reader.select(sql`select memory from runs where id = ${runId}`);
    return row?.memory;
  };

  test('each message keeps the tokens it was written with, on every read', async () => {
    const threadId = newThreadId();
    const { run } = await running(threadId, 11);
    const committed = await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: step({ call: 23, result: 6 }),
      events: [],
      steps: 1,
      toolCallCount: 1,
    });
    expect(committed.kind).toBe('committed');
    expect(await finish(run, { tokens: 8, position: 2 })).not.toBeNull();

    const expected: [string, number | null][] = [
      ['user', 11],
      ['assistant', 23],
      ['tool', 6],
      ['assistant', 8],
    ];
    const memory = await store.getThreadMemory(threadId, run.seq + 1, 10);
    expect(tokensOf(memory?.recent ?? [])).toEqual(expected);
    const page = await store.listThreadMessages(threadId, { limit: 10 });
    expect(tokensOf(page.messages)).toEqual(expected);
    expect(tokensOf(await store.listRunSteps(run.id))).toEqual(expected.slice(1, 3));
    const [user] = page.messages;
    expect((await store.getMessage(user?.id ?? ''))?.tokens).toBe(11);
    // An integer column, whatever the driver: no text, no float.
    const raw = await reader.select(
      sql`select tokens from messages where thread_id = ${threadId} order by seq, position`,
    );
    expect(raw.map((r) => Number(r.tokens))).toEqual([11, 23, 6, 8]);
  });

  test('a message written before counting existed keeps null, and the thread goes on', async () => {
    const threadId = newThreadId();
    const { run, messageId } = await running(threadId);
    await reader.select(sql`update messages set tokens = null where id = ${messageId}`);
    expect(await finish(run, { tokens: 5, position: 0 })).not.toBeNull();
    const next = await running(threadId, 4);
    const memory = await store.getThreadMemory(threadId, next.run.seq, 10);
    expect(tokensOf(memory?.recent ?? [])).toEqual([
      ['user', null],
      ['assistant', 5],
      ['user', 4],
    ]);
    expect((await store.getMessage(messageId))?.tokens).toBeNull();
  });

  test('commitStep and finishRun store the budget report; without one it stays', async () => {
    const { run } = await running(newThreadId());
    expect((await store.getRun(run.id))?.memory).toBeNull();
    expect(await rawMemory(run.id)).toBeNull(); // SQL null, not the JSON text 'null'

    // A step without a report leaves none.
    await store.commitStep({ runId: run.id, now: new Date(), messages: [], events: [] });
    expect(await rawMemory(run.id)).toBeNull();

    const first = report(30);
    await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: step({ call: 20, result: 5 }),
      events: [],
      steps: 1,
      memory: first,
    });
    expect((await store.getRun(run.id))?.memory).toEqual(first);
    // The next step without one keeps it.
    await store.commitStep({ runId: run.id, now: new Date(), messages: [], events: [], steps: 1 });
    expect((await store.getRun(run.id))?.memory).toEqual(first);

    const last = report(62);
    const end = await finish(run, { tokens: 7, position: 2 }, last);
    expect(end?.run.memory).toEqual(last);
    expect((await store.getRun(run.id))?.memory).toEqual(last);
    expect((await store.getRunWithReply(run.id))?.run.memory).toEqual(last);
  });

  test('finishRun without a report keeps the last step’s', async () => {
    const { run } = await running(newThreadId());
    const last = report(44);
    await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: step({ call: 20, result: 5 }),
      events: [],
      memory: last,
    });
    const end = await finish(run, { tokens: 7, position: 2 });
    expect(end?.run.memory).toEqual(last);
    expect((await store.getRun(run.id))?.memory).toEqual(last);
  });

  test('the summary is saved with its tokens, and 0 without one', async () => {
    const threadId = newThreadId();
    const { run, messageId } = await running(threadId);
    expect((await store.getThreadMemory(threadId, run.seq, 10))?.summaryTokens).toBe(0);
    expect((await store.getThread(threadId))?.summaryTokens).toBe(0);
    await store.saveSummary(threadId, {
      text: 'they said hello',
      throughMessageId: messageId,
      throughSeq: run.seq,
      tokens: 17,
    });
    const memory = await store.getThreadMemory(threadId, run.seq, 10);
    expect(memory).toMatchObject({
      summary: 'they said hello',
      summaryTokens: 17,
      summaryThroughSeq: run.seq,
    });
    expect((await store.getThread(threadId))?.summaryTokens).toBe(17);
  });

  const titled = (run: Run, title: string): Event => ({
    eventId: newEventId(),
    type: 'agent.thread.titled',
    runId: run.id,
    threadId: run.threadId,
    occurredAt: new Date().toISOString(),
    payload: JSON.stringify({ title }),
  });
  const saveTitle = (run: Run, title: string, source: TitleSource, now = new Date()) =>
    store.saveTitle({ threadId: run.threadId, title, source, now, event: titled(run, title) });

  /** What a refused title must leave as it was. */
  const snapshot = async (threadId: string) => {
    const thread = await store.getThread(threadId);
    return {
      counts: await rowCounts(reader),
      title: thread?.title,
      titleSource: thread?.titleSource,
      updatedAt: thread?.updatedAt.getTime(),
    };
  };

  test('a model title is saved once, with its outbox row; a second one is refused', async () => {
    const { run } = await running(newThreadId());
    expect(await store.getThread(run.threadId)).toMatchObject({ title: null, titleSource: null });
    const now = new Date(Date.now() + 60_000);
    const event = titled(run, 'Greetings');
    const saved = await store.saveTitle({
      threadId: run.threadId,
      title: 'Greetings',
      source: 'model',
      now,
      event,
    });
    expect(saved?.row).toMatchObject({ ...event, enqueueRunId: null, deliveredAt: null });
    const thread = await store.getThread(run.threadId);
    expect(thread).toMatchObject({ title: 'Greetings', titleSource: 'model' });
    expect(thread?.updatedAt.getTime()).toBe(now.getTime());
    const rows = await reader.select(
      sql`select event_id, type from outbox where thread_id = ${run.threadId} and type = ${'agent.thread.titled'}`,
    );
    expect(rows).toEqual([{ event_id: event.eventId, type: 'agent.thread.titled' }]);

    const before = await snapshot(run.threadId);
    expect(await saveTitle(run, 'Another try', 'model', new Date(Date.now() + 120_000))).toBeNull();
    expect(await snapshot(run.threadId)).toEqual(before);
  });

  test('a user title overwrites any; a model title never overwrites a user’s', async () => {
    const { run } = await running(newThreadId());
    expect(await saveTitle(run, 'From the model', 'model')).not.toBeNull();
    const mine = await saveTitle(run, 'Mine', 'user');
    expect(mine?.row.type).toBe('agent.thread.titled');
    expect(await store.getThread(run.threadId)).toMatchObject({
      title: 'Mine',
      titleSource: 'user',
    });
    expect(await saveTitle(run, 'Mine again', 'user')).not.toBeNull();

    const before = await snapshot(run.threadId);
    expect(await saveTitle(run, 'From the model later', 'model')).toBeNull();
    expect(await snapshot(run.threadId)).toEqual(before);
    expect(before).toMatchObject({ title: 'Mine again', titleSource: 'user' });

    // A user's title on a thread that had none.
    const other = await running(newThreadId());
    expect(await saveTitle(other.run, 'First', 'user')).not.toBeNull();
    expect(await saveTitle(other.run, 'From the model', 'model')).toBeNull();
    expect((await store.getThread(other.run.threadId))?.title).toBe('First');
  });

  test('two model titles at once: one is saved, with one row', async () => {
    const { run } = await running(newThreadId());
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => saveTitle(run, `Title ${i}`, 'model')),
    );
    const saved = results.filter((r) => r !== null);
    expect(saved).toHaveLength(1);
    const rows = await reader.select(
      sql`select payload from outbox where thread_id = ${run.threadId} and type = ${'agent.thread.titled'}`,
    );
    expect(rows).toHaveLength(1);
    const { title } = JSON.parse(String(rows[0]?.payload));
    expect((await store.getThread(run.threadId))?.title).toBe(title);
  });

  test('a title for an unknown thread saves nothing', async () => {
    const { run } = await running(newThreadId());
    const before = await rowCounts(reader);
    const ghost = { ...run, threadId: newThreadId() };
    expect(await saveTitle(ghost, 'Nobody', 'model')).toBeNull();
    expect(await saveTitle(ghost, 'Nobody', 'user')).toBeNull();
    expect(
      await store.saveTitle({
        threadId: 'thr_\u0000',
        title: 'x',
        source: 'user',
        now: new Date(),
        event: titled(ghost, 'x'),
      }),
    ).toBeNull();
    expect(await rowCounts(reader)).toEqual(before);
  });
});
