import { describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import type { Event, NewStepMessage, RunRequest } from '../../db/store';
import type { Message, Run } from '../../db/types';
import { TEST_DATABASE } from '../../harness/test-database';
import { buildEvent } from '../../src/events/event';
import { newEventId, newMessageId, newRunId, newThreadId, newToolCallId } from '../../src/ids';
import { rowCounts } from '../support/rows';
import {
  acceptRun,
  cancelledEventOf,
  claimRun,
  completeRun,
  noCancel,
  runRequest,
  useTestStore,
} from '../support/store';

/**
 * The store's half of durable steps: `commitStep`, `listRunSteps`, the reply placed after the
 * steps, conversation order by (seq, position), and rollback of a run's steps. Runs on the
 * engine TEST_DATABASE names; `.ci/run` runs it on both.
 */
describe(`durable steps in the store (${TEST_DATABASE})`, () => {
  const { store, reader } = useTestStore('agent-run-steps-');

  /** Accepts a message and returns its run as stored; no run is cancelled by its request. */
  const accept = (threadId: string, extra: Partial<RunRequest<unknown>> = {}) =>
    acceptRun(store, threadId, { cancelledEvent: noCancel, ...extra });

  /** Accepts a message and claims its run's attempt: a running run. */
  const running = async (threadId: string) => claimRun(store, (await accept(threadId)).id);

  const toolCall = (position: number, names: string[]): NewStepMessage => ({
    id: newMessageId(),
    position,
    role: 'assistant',
    content: `calling ${names.join(', ')}`,
    toolCalls: names.map((name, i) => ({
      toolCallId: newToolCallId(),
      name,
      arguments: JSON.stringify({ i }),
    })),
    tokens: 10 + names.length,
  });

  const toolResult = (position: number, name: string, isError = false): NewStepMessage => ({
    id: newMessageId(),
    position,
    role: 'tool',
    content: `${name} said ${position}`,
    toolCallId: newToolCallId(),
    name,
    isError,
    tokens: 7,
  });

  /** A step's event; the store keeps whatever type it is given. */
  const stepEvent = (run: Run, type: string, payload: object): Event => ({
    eventId: newEventId(),
    type,
    runId: run.id,
    threadId: run.threadId,
    occurredAt: new Date().toISOString(),
    payload: JSON.stringify(payload),
  });

  const finish = (run: Run, reply: { position: number; content?: string }, extra = {}) =>
    completeRun(store, run, reply, extra);

  /** What a refused commit must leave as it was. */
  const snapshot = async (run: Run) => {
    const thread = await store.getThread(run.threadId);
    const stored = await store.getRun(run.id);
    return {
      counts: await rowCounts(reader),
      messageCount: thread?.messageCount,
      updatedAt: thread?.updatedAt.getTime(),
      steps: stored?.steps,
      toolCallCount: stored?.toolCallCount,
      usage: stored?.usage,
      status: stored?.status,
      runSteps: (await store.listRunSteps(run.id)).map((m) => m.id),
    };
  };

  /** Where the messages of a page sit, as `seq:position`. */
  const places = (messages: Message[]) => messages.map((m) => `${m.seq}:${m.position}`);

  test('a step commits its messages, the counts, the usage and its outbox rows, and returns the rows', async () => {
    const run = await running(newThreadId());
    const before = await rowCounts(reader);
    const call = toolCall(0, ['search', 'calc']);
    const results = [toolResult(1, 'search'), toolResult(2, 'calc', true)];
    const events = [
      stepEvent(run, 'agent.run.tool_called', { step: 1 }),
      stepEvent(run, 'agent.run.tool_result', { step: 1, index: 0 }),
      stepEvent(run, 'agent.run.tool_result', { step: 1, index: 1 }),
    ];
    const now = new Date(Date.now() + 1000);
    const usage = { promptTokens: 10, completionTokens: 5, totalTokens: 15 };
    const result = await store.commitStep({
      runId: run.id,
      now,
      messages: [call, ...results],
      events,
      steps: 1,
      toolCallCount: 2,
      usage,
    });
    if (result.kind !== 'committed') throw new Error(`expected committed, got ${result.kind}`);
    // The rows, in the events' order, each the stored row: no job on any, none delivered.
    expect(result.rows.map((r) => r.eventId)).toEqual(events.map((e) => e.eventId));
    expect(result.rows.map((r) => r.type)).toEqual(events.map((e) => e.type));
    const ids = result.rows.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    for (const row of result.rows) {
      expect(row.enqueueRunId).toBeNull();
      expect(row.deliveredAt).toBeNull();
      expect(row.runId).toBe(run.id);
    }
    const stored = await reader.select(
      sql`select event_id from outbox where run_id = ${run.id} order by id`,
    );
    expect(stored.map((r) => r.event_id)).toContain(events[2]?.eventId);
    expect(await rowCounts(reader)).toEqual({
      ...before,
      messages: before.messages + 3,
      outbox: before.outbox + 3,
    });
    // The thread counts them (its user message and the three) and was touched now.
    const thread = await store.getThread(run.threadId);
    expect(thread?.messageCount).toBe(4);
    expect(thread?.updatedAt.getTime()).toBe(now.getTime());
    // The run's counts and usage.
    const after = (await store.getRun(run.id)) as Run;
    expect({ steps: after.steps, toolCallCount: after.toolCallCount, usage: after.usage }).toEqual({
      steps: 1,
      toolCallCount: 2,
      usage,
    });
    // The messages, whole, in the run's slot.
    const steps = await store.listRunSteps(run.id);
    expect(steps.map((m) => m.id)).toEqual([call.id, ...results.map((m) => m.id)]);
    for (const m of steps) {
      expect(m.seq).toBe(run.seq + 1);
      expect(m.threadId).toBe(run.threadId);
      expect(m.runId).toBe(run.id);
      expect(m.createdAt.getTime()).toBe(now.getTime());
    }
    expect(steps[0]).toMatchObject({
      role: 'assistant',
      position: 0,
      content: call.content,
      toolCalls: call.role === 'assistant' ? call.toolCalls : [],
      toolCallId: null,
      name: null,
      isError: null,
    });
    const [search, calc] = results as Extract<NewStepMessage, { role: 'tool' }>[];
    expect(steps[1]).toMatchObject({
      role: 'tool',
      position: 1,
      toolCalls: null,
      toolCallId: search?.toolCallId,
      name: 'search',
      isError: false,
    });
    expect(steps[2]).toMatchObject({
      role: 'tool',
      position: 2,
      toolCallId: calc?.toolCallId,
      name: 'calc',
      isError: true,
    });
    // Stored as SQL nulls, not as JSON or boolean stand-ins: the one-reply index and the
    // step query tell a reply by `tool_calls is null`.
    const nulls = await reader.select(
      sql`select id from messages where run_id = ${run.id} and seq = ${run.seq + 1}
          and tool_calls is null order by position`,
    );
    expect(nulls.map((r) => r.id)).toEqual(results.map((m) => m.id));
    const noError = await reader.select(
      sql`select id from messages where run_id = ${run.id} and is_error is null`,
    );
    expect(noError.map((r) => r.id).sort()).toEqual([run.userMessageId, call.id].sort());
    // A later step without counts or usage leaves the run's as they are.
    const more = await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: [toolCall(3, ['search'])],
      events: [],
    });
    expect(more).toEqual({ kind: 'committed', rows: [] });
    const unchanged = (await store.getRun(run.id)) as Run;
    expect([unchanged.steps, unchanged.toolCallCount, unchanged.usage]).toEqual([1, 2, usage]);
    expect((await store.getThread(run.threadId))?.messageCount).toBe(5);
  });

  test('a step that fails half-way writes nothing', async () => {
    const run = await running(newThreadId());
    const first = toolCall(0, ['search']);
    await store.commitStep({ runId: run.id, now: new Date(), messages: [first], events: [] });
    const before = await snapshot(run);
    // Position 2 is free, but the message reuses a stored id: the insert fails on it.
    const clash = { ...toolResult(2, 'search'), id: first.id };
    const failed = store.commitStep({
      runId: run.id,
      now: new Date(Date.now() + 5000),
      messages: [toolResult(1, 'search'), clash],
      events: [stepEvent(run, 'agent.run.tool_result', {})],
      steps: 9,
      toolCallCount: 9,
    });
    await expect(failed).rejects.toThrow();
    expect(await snapshot(run)).toEqual(before);
  });

  test('a run that is not running takes no step: queued, cancelling, completed, unknown', async () => {
    const step = (run: Run) =>
      store.commitStep({
        runId: run.id,
        now: new Date(Date.now() + 1000),
        messages: [toolCall(0, ['search']), toolResult(1, 'search')],
        events: [stepEvent(run, 'agent.run.tool_called', {})],
        steps: 1,
        toolCallCount: 1,
        usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
      });

    const queued = await accept(newThreadId());
    expect(queued.status).toBe('queued');

    const cancelling = await running(newThreadId());
    const marked = await store.cancelRun({
      runId: cancelling.id,
      cancel: { reason: null, by: 'client', requestedAt: new Date().toISOString() },
      now: new Date(),
      cancelledEvent: cancelledEventOf,
    });
    expect(marked?.kind).toBe('cancelling');

    const completed = await running(newThreadId());
    expect((await finish(completed, { position: 0 }))?.status).toBe('completed');

    for (const run of [queued, cancelling, completed]) {
      const before = await snapshot(run);
      expect(await step(run)).toEqual({ kind: 'not_running' });
      expect(await snapshot(run)).toEqual(before);
    }
    const counts = await rowCounts(reader);
    const unknown = { ...queued, id: newRunId() };
    expect(await step(unknown)).toEqual({ kind: 'not_running' });
    expect(await rowCounts(reader)).toEqual(counts);
  });

  test('a position taken already refuses the whole step and writes nothing', async () => {
    const run = await running(newThreadId());
    const committed = [toolCall(0, ['search']), toolResult(1, 'search')];
    await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: committed,
      events: [stepEvent(run, 'agent.run.tool_called', {})],
      steps: 1,
      toolCallCount: 1,
    });
    const before = await snapshot(run);
    // Another attempt's step: position 2 is free, position 1 is not.
    const again = await store.commitStep({
      runId: run.id,
      now: new Date(Date.now() + 1000),
      messages: [toolResult(2, 'search'), toolResult(1, 'search')],
      events: [stepEvent(run, 'agent.run.tool_result', {})],
      steps: 2,
      toolCallCount: 2,
    });
    expect(again).toEqual({ kind: 'taken' });
    expect(await snapshot(run)).toEqual(before);
    expect(before.runSteps).toEqual(committed.map((m) => m.id));
  });

  test('places are per slot: the next run of a thread takes positions from 0 again', async () => {
    const threadId = newThreadId();
    const first = await running(threadId);
    const second = await accept(threadId);
    expect(second.seq).toBe(first.seq + 2);
    await store.commitStep({
      runId: first.id,
      now: new Date(),
      messages: [toolCall(0, ['a'])],
      events: [],
    });
    await finish(first, { position: 1 });
    const started = await store.startRunAttempt({
      runId: second.id,
      now: new Date(),
      startedEvent: (r) =>
        buildEvent('agent.run.started', { runId: r.id, threadId }, { attempt: r.attempts }),
    });
    expect(started?.run.status).toBe('running');
    const result = await store.commitStep({
      runId: second.id,
      now: new Date(),
      messages: [toolCall(0, ['b'])],
      events: [],
    });
    expect(result.kind).toBe('committed');
    expect((await store.listRunSteps(second.id)).map((m) => m.seq)).toEqual([second.seq + 1]);
    expect((await store.listRunSteps(first.id)).map((m) => m.seq)).toEqual([first.seq + 1]);
  });

  test('listRunSteps: by position, whatever order they were committed in, without the user message or the reply', async () => {
    const run = await running(newThreadId());
    const late = [toolResult(3, 'b'), toolResult(2, 'a')];
    const early = [toolCall(0, ['a']), toolCall(1, ['b'])];
    await store.commitStep({ runId: run.id, now: new Date(), messages: late, events: [] });
    await store.commitStep({ runId: run.id, now: new Date(), messages: early, events: [] });
    await finish(run, { position: 4 });
    const steps = await store.listRunSteps(run.id);
    expect(steps.map((m) => m.position)).toEqual([0, 1, 2, 3]);
    expect(steps.map((m) => m.id)).toEqual([...early, ...late.reverse()].map((m) => m.id));
    expect(steps.map((m) => m.role)).toEqual(['assistant', 'assistant', 'tool', 'tool']);
    expect(await store.listRunSteps(newRunId())).toEqual([]);
    // A run with no steps has none, before and after its reply.
    const plain = await running(newThreadId());
    expect(await store.listRunSteps(plain.id)).toEqual([]);
    await finish(plain, { position: 0 });
    expect(await store.listRunSteps(plain.id)).toEqual([]);
  });

  test('finishRun puts the reply after the steps and stores the counts it is given', async () => {
    const run = await running(newThreadId());
    await store.commitStep({
      runId: run.id,
      now: new Date(),
      messages: [toolCall(0, ['search']), toolResult(1, 'search'), toolResult(2, 'search')],
      events: [],
      steps: 1,
      toolCallCount: 2,
    });
    const end = await finish(run, { position: 3, content: 'done' }, { steps: 2, toolCallCount: 2 });
    expect(end?.status).toBe('completed');
    expect([end?.run.steps, end?.run.toolCallCount]).toEqual([2, 2]);
    const read = await store.getRunWithReply(run.id);
    expect(read?.reply).toMatchObject({
      role: 'assistant',
      content: 'done',
      seq: run.seq + 1,
      position: 3,
      toolCalls: null,
    });
    expect([read?.run.steps, read?.run.toolCallCount]).toEqual([2, 2]);
    // The user message, three steps and the reply.
    expect((await store.getThread(run.threadId))?.messageCount).toBe(5);
    const page = await store.listThreadMessages(run.threadId, { limit: 10 });
    expect(places(page.messages)).toEqual(['0:0', '1:0', '1:1', '1:2', '1:3']);
    expect(page.messages.at(-1)?.id).toBe(read?.reply?.id as string);

    // Without counts, the run keeps those its steps stored.
    const other = await running(newThreadId());
    await store.commitStep({
      runId: other.id,
      now: new Date(),
      messages: [toolCall(0, ['a'])],
      events: [],
      steps: 1,
      toolCallCount: 1,
    });
    const ended = await finish(other, { position: 1 });
    expect([ended?.run.steps, ended?.run.toolCallCount]).toEqual([1, 1]);
    const stored = (await store.getRun(other.id)) as Run;
    expect([stored.steps, stored.toolCallCount]).toEqual([1, 1]);
  });

  test('pages, memory and summaries follow (seq, position), with a cursor inside a slot', async () => {
    const threadId = newThreadId();
    const first = await running(threadId);
    // Committed out of order: the order must come from the positions, not from the inserts.
    await store.commitStep({
      runId: first.id,
      now: new Date(),
      messages: [toolResult(2, 'b'), toolResult(1, 'a')],
      events: [],
    });
    await store.commitStep({
      runId: first.id,
      now: new Date(),
      messages: [toolCall(0, ['a', 'b'])],
      events: [],
    });
    await finish(first, { position: 3 });
    const second = await running(threadId);
    await finish(second, { position: 0 });
    const all = ['0:0', '1:0', '1:1', '1:2', '1:3', '2:0', '3:0'];

    const whole = await store.listThreadMessages(threadId, { limit: 100 });
    expect(places(whole.messages)).toEqual(all);
    expect(whole.hasMore).toBe(false);
    const newest = await store.listThreadMessages(threadId, { limit: 3 });
    expect(places(newest.messages)).toEqual(['1:3', '2:0', '3:0']);
    expect(newest.hasMore).toBe(true);
    // Before (1, 2): the user message, then positions 0 and 1 of the run's slot.
    const inside = await store.listThreadMessages(threadId, {
      limit: 2,
      before: { seq: 1, position: 2 },
    });
    expect(places(inside.messages)).toEqual(['1:0', '1:1']);
    expect(inside.hasMore).toBe(true);
    const rest = await store.listThreadMessages(threadId, {
      limit: 10,
      before: { seq: 1, position: 2 },
    });
    expect(places(rest.messages)).toEqual(['0:0', '1:0', '1:1']);
    expect(rest.hasMore).toBe(false);
    // Before (3, 0): every earlier slot whole, whatever its positions.
    const earlier = await store.listThreadMessages(threadId, {
      limit: 10,
      before: { seq: 3, position: 0 },
    });
    expect(places(earlier.messages)).toEqual(all.slice(0, 6));
    // Paging back from the newest reaches every message once, in order.
    const paged: Message[] = [];
    let page = await store.listThreadMessages(threadId, { limit: 2 });
    for (;;) {
      paged.unshift(...page.messages);
      const oldest = page.messages[0];
      if (!page.hasMore || !oldest) break;
      page = await store.listThreadMessages(threadId, {
        limit: 2,
        before: { seq: oldest.seq, position: oldest.position },
      });
    }
    expect(places(paged)).toEqual(all);

    // Memory: the newest `count` at or before a slot, oldest first, as whole messages.
    const memory = await store.getThreadMemory(threadId, 1, 4);
    expect(places(memory?.recent ?? [])).toEqual(['1:0', '1:1', '1:2', '1:3']);
    expect(memory?.recent[0]?.toolCalls?.map((c) => c.name)).toEqual(['a', 'b']);
    expect(memory?.recent[1]).toMatchObject({ role: 'tool', name: 'a', isError: false });
    expect(memory?.recent[3]).toMatchObject({ role: 'assistant', toolCalls: null });
    expect(places((await store.getThreadMemory(threadId, 3, 100))?.recent ?? [])).toEqual(all);
    expect(places((await store.getThreadMemory(threadId, 0, 100))?.recent ?? [])).toEqual(['0:0']);
    const empty = await store.getThreadMemory(threadId, -1, 10);
    expect(empty).toEqual({ summary: null, summaryTokens: 0, summaryThroughSeq: null, recent: [] });
    expect(await store.getThreadMemory(newThreadId(), 3, 10)).toBeUndefined();

    // What a summary folds in: strictly between two slots, in order.
    expect(places(await store.listMessagesBetween(threadId, 0, 2))).toEqual(all.slice(1, 5));
    expect(places(await store.listMessagesBetween(threadId, -1, 3))).toEqual(all.slice(0, 6));
  });

  test('rollback deletes the cancelled runs’ messages, the steps of a running one too, and uncounts them', async () => {
    const threadId = newThreadId();
    // A finished run stays whole.
    const done = await running(threadId);
    await store.commitStep({
      runId: done.id,
      now: new Date(),
      messages: [toolCall(0, ['a'])],
      events: [],
    });
    await finish(done, { position: 1 });
    // A running run with committed steps, and a queued one behind it.
    const busy = await running(threadId);
    await store.commitStep({
      runId: busy.id,
      now: new Date(),
      messages: [toolCall(0, ['a']), toolResult(1, 'a')],
      events: [],
    });
    const waiting = await accept(threadId);
    expect((await store.getThread(threadId))?.messageCount).toBe(3 + 3 + 1);

    const newer = runRequest(threadId, { multitask: 'rollback', cancelledEvent: cancelledEventOf });
    const rollback = await store.insertRunRequest(newer);
    if (rollback.kind !== 'created') throw new Error('expected a created run');
    expect(rollback.cancelling.map((r) => r.id)).toEqual([busy.id]);
    expect(rollback.ended.map((e) => e.run.id)).toEqual([waiting.id]);

    const left = await reader.select(
      sql`select id, seq, position from messages where thread_id = ${threadId}
          order by seq, position`,
    );
    const doneReply = (await store.getRunWithReply(done.id))?.reply;
    expect(left.map((r) => r.id)).toEqual([
      done.userMessageId,
      ...(await store.listRunSteps(done.id)).map((m) => m.id),
      doneReply?.id,
      newer.messageId,
    ]);
    expect(await store.listRunSteps(busy.id)).toEqual([]);
    expect(await store.getMessage(busy.userMessageId)).toBeUndefined();
    expect(await store.getMessage(waiting.userMessageId)).toBeUndefined();
    // The count is what is left: the finished run's three and the new message.
    expect((await store.getThread(threadId))?.messageCount).toBe(left.length);
    expect(left).toHaveLength(4);
    // The rolled-back run, still being cancelled, takes no more steps.
    const late = await store.commitStep({
      runId: busy.id,
      now: new Date(),
      messages: [toolResult(2, 'a')],
      events: [],
    });
    expect(late).toEqual({ kind: 'not_running' });
  });

  test('a run stores the tools it may call', async () => {
    const withTools = await accept(newThreadId(), { tools: ['search', 'calc'] });
    expect(withTools.tools).toEqual(['search', 'calc']);
    const without = await accept(newThreadId());
    expect(without.tools).toEqual([]);
    const [raw] = await reader.select(sql`select tools from runs where id = ${withTools.id}`);
    const tools = typeof raw?.tools === 'string' ? JSON.parse(raw.tools) : raw?.tools;
    expect(tools).toEqual(['search', 'calc']);
    // A new run's counts start at zero.
    expect([without.steps, without.toolCallCount]).toEqual([0, 0]);
  });

  test('firstClaim: only a run that never started; not after a rate-limited try gave its attempt back', async () => {
    const run = (await accept(newThreadId())).id;
    const claim = () =>
      store.startRunAttempt({
        runId: run,
        now: new Date(),
        startedEvent: (r) =>
          buildEvent('agent.run.started', { runId: r.id, threadId: r.threadId }, { attempt: 1 }),
      });
    const first = await claim();
    expect([first?.run.attempts, first?.firstClaim]).toEqual([1, true]);
    const committed = await store.commitStep({
      runId: run,
      now: new Date(),
      messages: [toolCall(0, ['search'])],
      events: [],
      steps: 1,
    });
    expect(committed.kind).toBe('committed');
    // A rate-limited try gives its attempt back: the next claim counts 1 again, and the step
    // committed before must still be read back.
    expect(
      await store.recordRunRetry(run, 0, { code: 'llm_rate_limited', message: 'slow down' }),
    ).toBe(true);
    const again = await claim();
    expect([again?.run.attempts, again?.firstClaim]).toEqual([1, false]);
    expect(await store.listRunSteps(run)).toHaveLength(1);
  });
});
