import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import type { RunAction, RunActionKind } from '../../db/types';
import { buildEvent } from '../../src/events/event';
import { newMessageId } from '../../src/ids';
import { createConsumer } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';
import { writeToolsFile } from '../support/tools-file';

/**
 * The client's half of a paused run: POST …/tool-outputs, POST …/approvals and their stream
 * commands. No worker runs: each test puts a run into `requires_action` through the store as a
 * worker would (claim the attempt, commit the step that asked for tools, pause), then answers it
 * over real HTTP or the real stream and reads what was stored.
 */

const MAX_OUTPUT = 200;
const location = { name: 'get_location', parameters: { type: 'object' } };
let callCounter = 0;

async function pausedRun(t: TestApp, kind: RunActionKind, names: string[]) {
  const posted = await t.post({ content: 'do it', clientTools: [location] });
  expect(posted.status).toBe(202);
  const { runId, threadId } = posted.body as { runId: string; threadId: string };
  const ids = { runId, threadId };
  const now = new Date();
  const attempt = await t.deps.db.startRunAttempt({
    runId,
    now,
    startedEvent: (run, resumed) =>
      buildEvent(
        'agent.run.started',
        ids,
        resumed ? { attempt: run.attempts, resumed: true } : { attempt: run.attempts },
        now,
      ),
  });
  expect(attempt?.run.status).toBe('running');
  const toolCalls = names.map((name) => ({
    toolCallId: `call_${++callCounter}`,
    name,
    arguments: '{"city":"Paris"}',
  }));
  const step = await t.deps.db.commitStep({
    runId,
    now,
    messages: [
      { id: newMessageId(), position: 0, role: 'assistant', content: '', toolCalls, tokens: 20 },
    ],
    events: [],
    steps: 1,
  });
  expect(step.kind).toBe('committed');
  const action: RunAction = {
    kind,
    step: 1,
    toolCalls: toolCalls.map((call, i) => ({ ...call, position: i + 1 })),
    since: now.toISOString(),
    deadline: new Date(now.getTime() + 3_600_000).toISOString(),
  };
  const paused = await t.deps.db.pauseRun({
    runId,
    now,
    action,
    event: buildEvent('agent.run.requires_action', ids, { kind, toolCalls }, now),
  });
  expect(paused).not.toBeNull();
  await Promise.all(
    [attempt?.row, paused?.row].flatMap((row) => (row ? [t.deps.publisher.deliver(row)] : [])),
  );
  return { runId, threadId, toolCalls, action };
}

const answer = (
  t: TestApp,
  runId: string,
  path: string,
  body: unknown,
  type = 'application/json',
) =>
  t.request(`/api/chat/runs/${runId}/${path}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const jsonColumn = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);

async function runRow(t: TestApp, runId: string) {
  const [row] = await t.sql.select(
    sql`select status, action, approved, resumed, tool_call_count from runs where id = ${runId}`,
  );
  return {
    status: row?.status,
    action: jsonColumn(row?.action),
    approved: jsonColumn(row?.approved),
    resumed: Boolean(row?.resumed),
    toolCallCount: Number(row?.tool_call_count),
  };
}

async function toolMessages(t: TestApp, threadId: string) {
  const page = await t.get(`/api/chat/threads/${threadId}/messages`);
  expect(page.status).toBe(200);
  return (page.body.messages as { role: string }[]).filter((m) => m.role === 'tool');
}

const toolResults = (t: TestApp, runId: string) =>
  t.events.entries.filter((e) => e.runId === runId && e.type === 'agent.run.tool_result');

describe.skipIf(!redisTestsEnabled())('answering a paused run over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      worker: false,
      env: {
        TOOLS_FILE: writeToolsFile({ approval: true }),
        TOOL_MAX_OUTPUT_CHARS: String(MAX_OUTPUT),
      },
    });
  });
  afterAll(() => t.close());

  test('the paused run shows its pendingAction, and ?wait= answers at once', async () => {
    const { runId, toolCalls, action } = await pausedRun(t, 'tool_outputs', ['get_location']);
    const started = Date.now();
    const view = await t.get(`/api/chat/runs/${runId}?wait=10`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(view.body).toMatchObject({
      status: 'requires_action',
      clientTools: ['get_location'],
      pendingAction: { kind: 'tool_outputs', toolCalls, deadline: action.deadline },
    });
    expect(Object.keys(view.body.pendingAction.toolCalls[0]).sort()).toEqual([
      'arguments',
      'name',
      'toolCallId',
    ]);
    const events = await t.events.waitFor(
      (all) => all.some((e) => e.runId === runId && e.type === 'agent.run.requires_action'),
      'agent.run.requires_action',
    );
    expect(
      events.find((e) => e.runId === runId && e.type === 'agent.run.requires_action')?.payload,
    ).toEqual({ kind: 'tool_outputs', toolCalls });
  });

  test('tool outputs: 202 queued, tool messages at their calls, tool_result events, no pendingAction', async () => {
    const { runId, threadId, toolCalls } = await pausedRun(t, 'tool_outputs', [
      'get_location',
      'get_location',
    ]);
    const [first, second] = toolCalls as [(typeof toolCalls)[0], (typeof toolCalls)[0]];
    const long = 'y'.repeat(MAX_OUTPUT * 3);
    // In another order than the calls: they are stored at the calls' places all the same.
    const response = await answer(t, runId, 'tool-outputs', {
      outputs: [
        { toolCallId: second.toolCallId, output: 'no GPS', isError: true },
        { toolCallId: first.toolCallId, output: long },
      ],
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ runId, status: 'queued' });

    const view = await t.get(`/api/chat/runs/${runId}`);
    expect(view.body).toMatchObject({ status: 'queued', pendingAction: null, toolCalls: 2 });
    expect(await runRow(t, runId)).toMatchObject({ status: 'queued', action: null, resumed: true });

    const messages = await toolMessages(t, threadId);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatchObject({
      toolCallId: first.toolCallId,
      name: 'get_location',
      isError: false,
    });
    const cut = (messages[0] as unknown as { content: string }).content;
    expect(cut.length).toBeLessThanOrEqual(MAX_OUTPUT);
    expect(cut).toContain('[output cut');
    expect(messages[1]).toMatchObject({
      toolCallId: second.toolCallId,
      name: 'get_location',
      isError: true,
      content: 'no GPS',
    });

    await t.events.waitFor(() => toolResults(t, runId).length === 2, 'two tool results');
    const results = toolResults(t, runId).map((e) => e.payload);
    expect(results.map((p) => p.toolCallId)).toEqual([first.toolCallId, second.toolCallId]);
    expect(results[1]).toEqual({
      step: 1,
      toolCallId: second.toolCallId,
      name: 'get_location',
      isError: true,
      output: 'no GPS',
      durationMs: expect.any(Number),
    });
    expect(results[0]?.output).toBe(cut);
  });

  test('approvals: the approved call is recorded, a denied one gets the reason as its result', async () => {
    const { runId, threadId, toolCalls } = await pausedRun(t, 'approval', [
      'weather',
      'weather',
      'weather',
    ]);
    const [yes, no, plain] = toolCalls.map((call) => call.toolCallId) as [string, string, string];
    const response = await answer(t, runId, 'approvals', {
      decisions: [
        { toolCallId: yes, approve: true },
        { toolCallId: no, approve: false, reason: 'not Paris' },
        { toolCallId: plain, approve: false },
      ],
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ runId, status: 'queued' });
    expect(await runRow(t, runId)).toMatchObject({
      status: 'queued',
      action: null,
      approved: [yes],
      resumed: true,
      toolCallCount: 2,
    });
    const messages = await toolMessages(t, threadId);
    expect(messages).toEqual([
      expect.objectContaining({
        toolCallId: no,
        name: 'weather',
        isError: true,
        content: 'denied by the user: not Paris',
      }),
      expect.objectContaining({
        toolCallId: plain,
        isError: true,
        content: 'denied by the user',
      }),
    ]);
    await t.events.waitFor(() => toolResults(t, runId).length === 2, 'two tool results');
    expect(toolResults(t, runId).map((e) => e.payload.toolCallId)).toEqual([no, plain]);
  });

  test.each([
    [
      'a missing id',
      (ids: string[]) => ({ outputs: [{ toolCallId: ids[0], output: 'a' }] }),
      400,
      /missing "call_/,
    ],
    [
      'an unknown id',
      (ids: string[]) => ({
        outputs: [
          ...ids.map((id) => ({ toolCallId: id, output: 'a' })),
          { toolCallId: 'call_nope', output: 'b' },
        ],
      }),
      400,
      /unknown "call_nope"/,
    ],
    [
      'a repeated id',
      (ids: string[]) => ({
        outputs: [...ids, ids[0]].map((id) => ({ toolCallId: id, output: 'a' })),
      }),
      400,
      /repeated "call_/,
    ],
    ['no outputs', () => ({ outputs: [] }), 400, /missing/],
    [
      'an unknown field',
      (ids: string[]) => ({
        outputs: ids.map((id) => ({ toolCallId: id, output: 'a', extra: 1 })),
      }),
      400,
      /./,
    ],
    [
      'an output that is not text',
      (ids: string[]) => ({ outputs: ids.map((id) => ({ toolCallId: id, output: 5 })) }),
      400,
      /./,
    ],
    [
      'a NUL in an output',
      (ids: string[]) => ({ outputs: ids.map((id) => ({ toolCallId: id, output: 'a\u0000' })) }),
      400,
      /NUL/,
    ],
    ['malformed JSON', () => '{"outputs": [', 400, /JSON/],
    ['an empty body', () => '', 400, /JSON/],
  ])('%s: 400 invalid_request, nothing changed', async (_name, body, status, message) => {
    const { runId, toolCalls } = await pausedRun(t, 'tool_outputs', [
      'get_location',
      'get_location',
    ]);
    const before = await rowCounts(t.sql);
    const response = await answer(
      t,
      runId,
      'tool-outputs',
      body(toolCalls.map((c) => c.toolCallId)),
    );
    expect(response.status).toBe(status);
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('invalid_request');
    expect(error.message).toMatch(message);
    expect(await rowCounts(t.sql)).toEqual(before);
    expect((await t.get(`/api/chat/runs/${runId}`)).body).toMatchObject({
      status: 'requires_action',
      pendingAction: { kind: 'tool_outputs' },
      toolCalls: 0,
    });
  });

  test('bad decisions (a missing id, a reason over 500, a wrong content type) change nothing', async () => {
    const { runId, toolCalls } = await pausedRun(t, 'approval', ['weather', 'weather']);
    const [a, b] = toolCalls.map((c) => c.toolCallId) as [string, string];
    const before = await rowCounts(t.sql);
    const missing = await answer(t, runId, 'approvals', {
      decisions: [{ toolCallId: a, approve: true }],
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain(
      `missing "${b}"`,
    );
    const long = await answer(t, runId, 'approvals', {
      decisions: [
        { toolCallId: a, approve: true },
        { toolCallId: b, approve: false, reason: 'x'.repeat(501) },
      ],
    });
    expect(long.status).toBe(400);
    const text = await answer(t, runId, 'approvals', 'decisions', 'text/plain');
    expect(text.status).toBe(415);
    expect(await rowCounts(t.sql)).toEqual(before);
    expect(await runRow(t, runId)).toMatchObject({ status: 'requires_action', approved: [] });
  });

  test('a run that is not waiting, or waits for the other kind: 409 run_not_waiting', async () => {
    const outputs = await pausedRun(t, 'tool_outputs', ['get_location']);
    const wrongKind = await answer(t, outputs.runId, 'approvals', {
      decisions: [{ toolCallId: outputs.toolCalls[0]?.toolCallId, approve: true }],
    });
    expect(wrongKind.status).toBe(409);
    expect(await wrongKind.json()).toMatchObject({
      error: { code: 'run_not_waiting', details: { status: 'requires_action' } },
    });

    const queued = await t.post({ content: 'just queued' });
    const notPaused = await answer(t, queued.body.runId, 'tool-outputs', {
      outputs: [{ toolCallId: 'call_x', output: 'a' }],
    });
    expect(notPaused.status).toBe(409);
    expect(await notPaused.json()).toMatchObject({
      error: { code: 'run_not_waiting', details: { status: 'queued' } },
    });

    // Answered once: a second answer finds it queued, and adds nothing.
    const body = { outputs: [{ toolCallId: outputs.toolCalls[0]?.toolCallId, output: 'here' }] };
    expect((await answer(t, outputs.runId, 'tool-outputs', body)).status).toBe(202);
    const before = await rowCounts(t.sql);
    const twice = await answer(t, outputs.runId, 'tool-outputs', body);
    expect(twice.status).toBe(409);
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('an unknown run: 404 not_found', async () => {
    for (const path of ['tool-outputs', 'approvals']) {
      const response = await answer(t, 'run_doesnotexist0000000000000', path, {
        [path === 'approvals' ? 'decisions' : 'outputs']: [],
      });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });
});

describe.skipIf(!redisTestsEnabled())('answering a paused run over the stream', () => {
  let t: TestApp;
  let producer: Redis;
  let consumer: ReturnType<typeof createConsumer>;
  beforeAll(async () => {
    // The api role and the stream consumer, without the BullMQ worker: answered runs stay queued.
    t = await startTestApp({
      worker: false,
      env: { TOOLS_FILE: writeToolsFile({ approval: true }) },
    });
    consumer = createConsumer(t.deps);
    await consumer.start();
    producer = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    producer.disconnect();
    await consumer.stop();
    await t.close();
  });

  const command = (type: string, requestId: string, runId: string | undefined, payload?: unknown) =>
    producer.xadd(
      t.config.redis.streamKey,
      '*',
      'type',
      type,
      'requestId',
      requestId,
      ...(runId ? ['runId', runId] : []),
      ...(payload === undefined ? [] : ['payload', JSON.stringify(payload)]),
    );
  const rejectionOf = (requestId: string) =>
    t.events.entries.find((e) => e.type === 'agent.run.rejected' && e.requestId === requestId);

  test('agent.run.tool_outputs answers like the HTTP route', async () => {
    const { runId, threadId, toolCalls } = await pausedRun(t, 'tool_outputs', ['get_location']);
    const toolCallId = toolCalls[0]?.toolCallId as string;
    await command('agent.run.tool_outputs', 'outputs-1', runId, {
      outputs: [{ toolCallId, output: 'Lyon' }],
    });
    await t.events.waitFor(() => toolResults(t, runId).length === 1, 'the tool result');
    expect(toolResults(t, runId)[0]?.payload).toMatchObject({
      toolCallId,
      output: 'Lyon',
      isError: false,
    });
    expect((await t.get(`/api/chat/runs/${runId}`)).body).toMatchObject({
      status: 'queued',
      pendingAction: null,
    });
    expect(await toolMessages(t, threadId)).toEqual([
      expect.objectContaining({ toolCallId, name: 'get_location', content: 'Lyon' }),
    ]);
  });

  test('agent.run.approvals answers like the HTTP route', async () => {
    const { runId, toolCalls } = await pausedRun(t, 'approval', ['weather', 'weather']);
    const [yes, no] = toolCalls.map((c) => c.toolCallId) as [string, string];
    await command('agent.run.approvals', 'approvals-1', runId, {
      decisions: [
        { toolCallId: yes, approve: true },
        { toolCallId: no, approve: false, reason: 'no' },
      ],
    });
    await t.events.waitFor(() => toolResults(t, runId).length === 1, 'the denial');
    expect(toolResults(t, runId)[0]?.payload).toMatchObject({
      toolCallId: no,
      isError: true,
      output: 'denied by the user: no',
    });
    expect(await runRow(t, runId)).toMatchObject({ status: 'queued', approved: [yes] });
  });

  test('refused answers are rejected with the HTTP error and change nothing', async () => {
    const { runId, toolCalls } = await pausedRun(t, 'tool_outputs', [
      'get_location',
      'get_location',
    ]);
    const before = await rowCounts(t.sql);
    const first = toolCalls[0]?.toolCallId;
    await command('agent.run.tool_outputs', 'reject-missing', runId, {
      outputs: [{ toolCallId: first, output: 'a' }],
    });
    await command('agent.run.approvals', 'reject-kind', runId, {
      decisions: toolCalls.map((c) => ({ toolCallId: c.toolCallId, approve: true })),
    });
    await command('agent.run.tool_outputs', 'reject-no-run', undefined, { outputs: [] });
    await command('agent.run.tool_outputs', 'reject-unknown', 'run_doesnotexist0000000000000', {
      outputs: [],
    });
    await command('agent.run.approvals', 'reject-payload', runId, { decisions: 'yes' });
    await command('agent.run.tool_outputs', 'reject-none', runId);
    const names = [
      'reject-missing',
      'reject-kind',
      'reject-no-run',
      'reject-unknown',
      'reject-payload',
      'reject-none',
    ];
    await t.events.waitFor(() => names.every(rejectionOf), 'the rejections');
    const codes = Object.fromEntries(names.map((n) => [n, rejectionOf(n)?.payload.error.code]));
    expect(codes).toEqual({
      'reject-missing': 'invalid_request',
      'reject-kind': 'run_not_waiting',
      'reject-no-run': 'invalid_request',
      'reject-unknown': 'not_found',
      'reject-payload': 'invalid_request',
      'reject-none': 'invalid_request',
    });
    expect(rejectionOf('reject-kind')?.payload.error.details).toEqual({
      status: 'requires_action',
    });
    expect(await rowCounts(t.sql)).toEqual(before);
    expect((await t.get(`/api/chat/runs/${runId}`)).body.status).toBe('requires_action');
  });
});
