import { describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import type { Event, NewStepMessage, RunAnswer } from '../../db/store';
import type { Run, RunAction, RunActionKind } from '../../db/types';
import { TEST_DATABASE } from '../../harness/test-database';
import { buildEvent } from '../../src/events/event';
import { newEventId, newMessageId, newRunId, newThreadId, newToolCallId } from '../../src/ids';
import { rowCounts } from '../support/rows';
import { acceptRun, cancelledEventOf, runRequest, useTestStore } from '../support/store';

/**
 * The store's half of client tools and approvals: `pauseRun`, `answerRun`, the claim of a
 * paused or resumed run, and a paused run's cancel, interrupt, rollback and failure. Runs on the
 * engine TEST_DATABASE names; `.ci/run` runs it on both.
 */
describe(`paused runs in the store (${TEST_DATABASE})`, () => {
  const { store, reader } = useTestStore('agent-run-actions-');

  /** Claims a run's attempt; `told` records what `startedEvent` was told of each claim. */
  const told: boolean[] = [];
  const start = (run: Run) =>
    store.startRunAttempt({
      runId: run.id,
      now: new Date(),
      startedEvent: (r, resumed) => {
        told.push(resumed);
        return buildEvent(
          'agent.run.started',
          { runId: r.id, threadId: r.threadId },
          resumed ? { attempt: r.attempts, resumed } : { attempt: r.attempts },
        );
      },
    });

  const running = async (threadId = newThreadId()) => {
    const attempt = await start(await acceptRun(store, threadId));
    if (attempt?.run.status !== 'running') throw new Error('expected a running run');
    return attempt.run;
  };

  const event = (run: Run, type: string, payload: object = {}): Event => ({
    eventId: newEventId(),
    type,
    runId: run.id,
    threadId: run.threadId,
    occurredAt: new Date().toISOString(),
    payload: JSON.stringify(payload),
  });

  /** The assistant message of a step that asked for `names`, at `position`. */
  const askFor = (names: string[], position = 0) =>
    ({
      id: newMessageId(),
      position,
      role: 'assistant',
      content: '',
      toolCalls: names.map((name) => ({ toolCallId: newToolCallId(), name, arguments: '{}' })),
      tokens: 4 + 6 * names.length,
    }) satisfies NewStepMessage;

  const actionOf = (kind: RunActionKind, calls: ReturnType<typeof askFor>): RunAction => ({
    kind,
    step: 1,
    toolCalls: calls.toolCalls.map((c, i) => ({ ...c, position: calls.position + 1 + i })),
    since: new Date().toISOString(),
    deadline: new Date(Date.now() + 60_000).toISOString(),
  });

  /** A running run that committed a step asking for `names`, then paused for them. */
  const paused = async (kind: RunActionKind = 'tool_outputs', names = ['a', 'b'], run?: Run) => {
    const r = run ?? (await running());
    const calls = askFor(names, (await store.listRunSteps(r.id)).length);
    const committed = await store.commitStep({
      runId: r.id,
      now: new Date(),
      messages: [calls],
      events: [],
      steps: 1,
    });
    expect(committed.kind).toBe('committed');
    const action = actionOf(kind, calls);
    const pause = await store.pauseRun({
      runId: r.id,
      now: new Date(),
      action,
      event: event(r, 'agent.run.requires_action', { kind }),
    });
    if (!pause) throw new Error('expected the run to pause');
    return { run: (await store.getRun(r.id)) as Run, action, row: pause.row };
  };

  const result = (at: RunAction['toolCalls'][number], content = 'out'): NewStepMessage => ({
    id: newMessageId(),
    position: at.position,
    role: 'tool',
    content,
    toolCallId: at.toolCallId,
    name: at.name,
    isError: false,
    tokens: 6,
  });

  const answerTo = (run: Run, action: RunAction, extra: Partial<RunAnswer> = {}): RunAnswer => ({
    runId: run.id,
    now: new Date(Date.now() + 1000),
    kind: action.kind,
    since: action.since,
    messages: action.toolCalls.map((c) => result(c)),
    events: action.toolCalls.map(() => event(run, 'agent.run.tool_result')),
    approved: [],
    toolCallCount: action.toolCalls.length,
    ...extra,
  });

  /** What a refused call must leave as it was. */
  const snapshot = async (run: Run) => ({
    counts: await rowCounts(reader),
    run: await store.getRun(run.id),
    thread: await store.getThread(run.threadId),
  });

  test('a run stores the client tools it was given', async () => {
    const clientTools = [
      { name: 'pick_color', description: 'asks the user', parameters: { type: 'object' } },
    ];
    const run = await acceptRun(store, newThreadId(), { clientTools });
    expect(run.clientTools).toEqual(clientTools);
    expect([run.action, run.approved, run.resumed]).toEqual([null, [], false]);
    expect((await acceptRun(store, newThreadId())).clientTools).toEqual([]);
  });

  test('pauseRun: a running run pauses with its action and the outbox row of its announcement', async () => {
    const run = await running();
    const calls = askFor(['pick_color']);
    await store.commitStep({ runId: run.id, now: new Date(), messages: [calls], events: [] });
    const before = await rowCounts(reader);
    const action = actionOf('tool_outputs', calls);
    const announced = event(run, 'agent.run.requires_action', { kind: 'tool_outputs' });
    const now = new Date(Date.now() + 1000);
    const pause = await store.pauseRun({ runId: run.id, now, action, event: announced });
    expect(pause?.row).toMatchObject({
      eventId: announced.eventId,
      type: 'agent.run.requires_action',
      runId: run.id,
      enqueueRunId: null,
      deliveredAt: null,
    });
    expect(pause?.row.createdAt.getTime()).toBe(now.getTime());
    expect(await rowCounts(reader)).toEqual({ ...before, outbox: before.outbox + 1 });
    const stored = (await store.getRun(run.id)) as Run;
    expect(stored.status).toBe('requires_action');
    expect(stored.action).toEqual(action);
    // Pausing spends no attempt and leaves the run's counts.
    expect([stored.attempts, stored.steps, stored.resumed]).toEqual([1, run.steps, false]);
  });

  test('pauseRun: a run that is not running does not pause, and nothing is written', async () => {
    const queued = await acceptRun(store, newThreadId());
    const cancelling = await running();
    await store.cancelRun({
      runId: cancelling.id,
      cancel: { reason: null, by: 'client', requestedAt: new Date().toISOString() },
      now: new Date(),
      cancelledEvent: cancelledEventOf,
    });
    const { run: pausedRun } = await paused();
    const unknown = { ...queued, id: newRunId() };
    for (const run of [queued, cancelling, pausedRun, unknown]) {
      const before = await snapshot(run);
      const pause = await store.pauseRun({
        runId: run.id,
        now: new Date(),
        action: actionOf('approval', askFor(['x'])),
        event: event(run, 'agent.run.requires_action'),
      });
      expect(pause).toBeNull();
      expect(await snapshot(run)).toEqual(before);
    }
    expect((await store.getRun(cancelling.id))?.status).toBe('cancelling');
  });

  test('answerRun: the results in the run’s slot, counted, approved extended, the run queued and resumed, the rows', async () => {
    // An approval first: approved [a, b].
    const first = await paused('approval', ['a', 'b']);
    const [a, b] = first.action.toolCalls.map((c) => c.toolCallId) as [string, string];
    const approvedOnly = await store.answerRun(
      answerTo(first.run, first.action, {
        messages: [],
        events: [],
        approved: [a, b, a],
        toolCallCount: 0,
      }),
    );
    expect(approvedOnly.kind).toBe('answered');
    expect((await store.getRun(first.run.id))?.approved).toEqual([a, b]);
    // Claimed again, it pauses for its client's tools; the answer settles them.
    const again = await start(first.run);
    expect(again?.run.status).toBe('running');
    const { run, action } = await paused('approval', ['c', 'd'], again?.run);
    const c = action.toolCalls[0]?.toolCallId as string;
    const thread = await store.getThread(run.threadId);
    const before = await rowCounts(reader);
    const denied = action.toolCalls.slice(1).map((call) => ({
      ...result(call, 'denied by the client'),
      isError: true,
    }));
    const events = denied.map(() => event(run, 'agent.run.tool_result'));
    const input = answerTo(run, action, {
      messages: denied,
      events,
      approved: [b, c],
      toolCallCount: 1,
    });
    const answered = await store.answerRun(input);
    if (answered.kind !== 'answered') throw new Error(`expected answered, got ${answered.kind}`);
    // The rows, in the events' order: no job on any.
    expect(answered.rows.map((r) => r.eventId)).toEqual(events.map((e) => e.eventId));
    for (const row of answered.rows) expect(row.enqueueRunId).toBeNull();
    expect(await rowCounts(reader)).toEqual({
      ...before,
      messages: before.messages + denied.length,
      outbox: before.outbox + events.length,
    });
    // The run: queued, resumed, waiting for nothing, its approvals each once, in order.
    const stored = (await store.getRun(run.id)) as Run;
    expect(answered.run).toEqual(stored);
    expect(stored).toMatchObject({
      status: 'queued',
      action: null,
      resumed: true,
      approved: [a, b, c],
      toolCallCount: 1,
      attempts: 1,
    });
    // The results, in the run's slot at their calls' places, counted on the thread.
    const after = await store.getThread(run.threadId);
    expect(after?.messageCount).toBe((thread?.messageCount ?? 0) + denied.length);
    expect(after?.updatedAt.getTime()).toBe(input.now.getTime());
    const steps = await store.listRunSteps(run.id);
    // c's result comes when the run goes on and calls it.
    expect(steps.map((m) => m.position)).toEqual([0, 1, 3]);
    expect(steps[2]).toMatchObject({
      id: denied[0]?.id,
      role: 'tool',
      seq: run.seq + 1,
      toolCallId: action.toolCalls[1]?.toolCallId,
      name: 'd',
      isError: true,
      toolCalls: null,
    });
    // SQL nulls, as commitStep stores them.
    const nulls = await reader.select(
      sql`select id from messages where id = ${denied[0]?.id ?? ''} and tool_calls is null`,
    );
    expect(nulls).toHaveLength(1);
    // An answer repeated finds the run waiting no more.
    const before2 = await snapshot(run);
    expect(await store.answerRun(input)).toEqual({ kind: 'not_waiting', run: stored });
    expect(await snapshot(run)).toEqual(before2);
  });

  test('answerRun: another kind, another pause or a run not paused is not waiting, and nothing is written; an unknown run is unknown', async () => {
    const { run, action } = await paused('tool_outputs');
    const active = await running();
    const queued = await acceptRun(store, newThreadId());
    const wrong = [
      { run, input: answerTo(run, action, { kind: 'approval' }) },
      { run, input: answerTo(run, action, { since: new Date(0).toISOString() }) },
      { run: active, input: answerTo(active, action) },
      { run: queued, input: answerTo(queued, action) },
    ];
    for (const { run: r, input } of wrong) {
      const before = await snapshot(r);
      const answered = await store.answerRun(input);
      expect(answered).toEqual({ kind: 'not_waiting', run: before.run as Run });
      expect(await snapshot(r)).toEqual(before);
    }
    const counts = await rowCounts(reader);
    expect(await store.answerRun(answerTo({ ...run, id: newRunId() }, action))).toEqual({
      kind: 'unknown',
    });
    expect(await rowCounts(reader)).toEqual(counts);
  });

  test('startRunAttempt: a paused run is returned as it is; a resumed one spends no attempt; a normal claim spends one', async () => {
    const { run, row, action } = await paused();
    const before = await snapshot(run);
    told.length = 0;
    const attempt = await start(run);
    expect(attempt?.row).toBeNull();
    expect(attempt?.run).toEqual(before.run as Run);
    // Tried before: its undelivered rows (the announcement of the pause among them).
    expect(attempt?.earlier.map((r) => r.id)).toContain(row.id);
    expect(told).toEqual([]);
    expect(await snapshot(run)).toEqual(before);

    // Answered: the next claim resumes it.
    expect((await store.answerRun(answerTo(run, action))).kind).toBe('answered');
    const resumed = await start(run);
    expect(told).toEqual([true]);
    expect(resumed?.row?.type).toBe('agent.run.started');
    expect(resumed?.run).toMatchObject({
      status: 'running',
      attempts: 1,
      resumed: false,
      finishedAt: null,
    });
    expect(resumed?.run.startedAt?.getTime()).toBe(run.startedAt?.getTime() as number);
    expect(resumed?.earlier.length).toBeGreaterThan(0);
    const stored = (await store.getRun(run.id)) as Run;
    expect([stored.status, stored.attempts, stored.resumed]).toEqual(['running', 1, false]);

    // A claim of a run not resumed spends an attempt and says so.
    const again = await start(run);
    expect(told).toEqual([true, false]);
    expect(again?.run.attempts).toBe(2);
    const fresh = await start(await acceptRun(store, newThreadId()));
    expect(told).toEqual([true, false, false]);
    expect([fresh?.run.attempts, fresh?.run.resumed, fresh?.earlier]).toEqual([1, false, []]);
  });

  test('cancelRun: a paused run ends cancelled at once, its action cleared, and its thread moves on', async () => {
    const { run } = await paused();
    const next = await acceptRun(store, run.threadId);
    const cancelled = await store.cancelRun({
      runId: run.id,
      cancel: { reason: 'changed my mind', by: 'client', requestedAt: new Date().toISOString() },
      now: new Date(),
      cancelledEvent: cancelledEventOf,
    });
    if (cancelled?.kind !== 'cancelled')
      throw new Error(`expected cancelled, got ${cancelled?.kind}`);
    expect(cancelled.row?.type).toBe('agent.run.cancelled');
    // It was its thread's head: its row enqueues the next run (whose announcement is out) or
    // hands the job to that announcement.
    const [handed] = await reader.select(
      sql`select enqueue_run_id from outbox where run_id = ${next.id}
          and type = 'agent.run.requested'`,
    );
    expect([cancelled.row?.enqueueRunId, handed?.enqueue_run_id]).toContain(next.id);
    const stored = (await store.getRun(run.id)) as Run;
    expect(cancelled.run).toEqual(stored);
    expect(stored).toMatchObject({ status: 'cancelled', action: null });
    expect(stored.cancel?.reason).toBe('changed my mind');
    expect(stored.finishedAt).not.toBeNull();
    expect((await store.listThreadHeads(1000)).map((r) => r.id)).toContain(next.id);
  });

  test('interrupt ends a paused run cancelled at once; rollback deletes its messages too', async () => {
    const interrupted = await paused();
    const newer = runRequest(interrupted.run.threadId, { multitask: 'interrupt' });
    const made = await store.insertRunRequest(newer);
    if (made.kind !== 'created') throw new Error('expected a created run');
    expect(made.cancelling).toEqual([]);
    expect(made.ended.map((e) => [e.run.id, e.status, e.run.action])).toEqual([
      [interrupted.run.id, 'cancelled', null],
    ]);
    expect(made.ended[0]?.row.type).toBe('agent.run.cancelled');
    expect(made.row.enqueueRunId).toBe(newer.runId);
    expect(await store.getRun(interrupted.run.id)).toMatchObject({
      status: 'cancelled',
      action: null,
      cancel: { by: 'interrupt' },
    });
    expect(await store.listRunSteps(interrupted.run.id)).toHaveLength(1);

    const rolled = await paused();
    const rollback = runRequest(rolled.run.threadId, { multitask: 'rollback' });
    const back = await store.insertRunRequest(rollback);
    if (back.kind !== 'created') throw new Error('expected a created run');
    expect(back.ended.map((e) => e.run.id)).toEqual([rolled.run.id]);
    expect(await store.getRun(rolled.run.id)).toMatchObject({ status: 'cancelled', action: null });
    expect(await store.listRunSteps(rolled.run.id)).toEqual([]);
    expect(await store.getMessage(rolled.run.userMessageId)).toBeUndefined();
    expect((await store.getThread(rolled.run.threadId))?.messageCount).toBe(1);
  });

  test('finishRun fails a paused run past its deadline, its action cleared', async () => {
    const { run } = await paused();
    const error = { code: 'action_timeout', message: 'the client did not answer' };
    const end = await store.finishRun({
      runId: run.id,
      now: new Date(),
      attempts: run.attempts,
      event: event(run, 'agent.run.failed', { error }),
      error,
      cancelledEvent: cancelledEventOf,
    });
    expect(end?.status).toBe('failed');
    const stored = (await store.getRun(run.id)) as Run;
    expect(end?.run).toEqual(stored);
    expect(stored).toMatchObject({ status: 'failed', action: null, error, attempts: 1 });
  });

  test('a paused run keeps its thread busy: it is the head, and a newer run waits behind it', async () => {
    const { run } = await paused();
    const behind = await acceptRun(store, run.threadId);
    const heads = (await store.listThreadHeads(1000)).map((r) => r.id);
    expect(heads).toContain(run.id);
    expect(heads).not.toContain(behind.id);
    const [requested] = await reader.select(
      sql`select enqueue_run_id from outbox where run_id = ${behind.id}`,
    );
    expect(requested?.enqueue_run_id).toBeNull();
    const rejected = await store.insertRunRequest(
      runRequest(run.threadId, { multitask: 'reject' }),
    );
    expect(rejected.kind).toBe('busy');
  });
});
