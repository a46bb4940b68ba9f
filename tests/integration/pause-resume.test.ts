import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { waitForValue } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const colorTool = {
  name: 'pick_color',
  description: 'Asks the user to pick a color',
  parameters: { type: 'object', properties: { hint: { type: 'string' } } },
};
const params = { type: 'object', properties: { q: { type: 'string' } } };

/**
 * A run that pauses for its client: the model calls a client tool (declared on the message) or a
 * server tool that needs approval; the run waits in `requires_action` with no worker slot held
 * (its job is delayed), the client answers over HTTP or the stream, and the run goes on from its
 * committed steps, spending no attempt.
 */
describe.skipIf(!redisTestsEnabled())('client tools and approvals', () => {
  let dir: string;
  let llm: FakeLlm;
  let http: HttpToolServer;
  let t: TestApp;
  let producer: Redis;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'client-tools-'));
    llm = await startFakeLlm({ quiet: true });
    http = startHttpToolServer();
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({
        http: [
          {
            name: 'guarded',
            description: 'needs approval',
            parameters: params,
            url: `${http.url}/echo`,
            approval: true,
          },
          { name: 'free', description: 'no approval', parameters: params, url: `${http.url}/echo` },
        ],
      }),
    );
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: file } });
    producer = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    producer.disconnect();
    await t.close();
    await llm.stop();
    http.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => llm.reset());

  const waiting = async (runId: string) => {
    await t.events.waitFor(
      (all) => all.some((e) => e.runId === runId && e.type === 'agent.run.requires_action'),
      'the run to wait for its client',
    );
    // The pause is committed before it is announced: the view says so now.
    return (await t.get(`/api/chat/runs/${runId}`)).body;
  };
  const answer = (runId: string, route: 'tool-outputs' | 'approvals', body: unknown) =>
    t.request(`/api/chat/runs/${runId}/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('a client tool over HTTP: the run waits with its job delayed, the output is given, the run goes on without spending an attempt', async () => {
    const { body } = await t.post({
      content: 'choose [[tool:pick_color {"hint":"warm"}]]',
      clientTools: [colorTool],
    });
    const run = await waiting(body.runId);
    expect(run).toMatchObject({
      status: 'requires_action',
      pendingAction: {
        kind: 'tool_outputs',
        toolCalls: [{ name: 'pick_color', arguments: '{"hint":"warm"}' }],
      },
    });
    const [call] = run.pendingAction.toolCalls;
    // No worker slot is held: the job sleeps in BullMQ's delayed set.
    // (The pause is announced just before the job is handed back.)
    expect(
      await waitForValue(
        () => t.deps.queue.getJobState(body.runId),
        (state) => state === 'delayed',
      ),
    ).toBe('delayed');
    // The model was offered the client tool.
    expect(
      llm.requests[0]?.body.tools.map((tool: { function: { name: string } }) => tool.function.name),
    ).toEqual(['pick_color']);

    const response = await answer(body.runId, 'tool-outputs', {
      outputs: [{ toolCallId: call.toolCallId, output: 'red' }],
    });
    expect(response.status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.tool_called',
      'agent.run.requires_action',
      'agent.run.tool_result',
      'agent.run.started',
      'agent.run.completed',
    ]);
    expect(events[2]?.payload).toMatchObject({ source: 'client', toolCallId: call.toolCallId });
    expect(events[5]?.payload).toEqual({ attempt: 1, resumed: true });
    expect(events.at(-1)?.payload).toMatchObject({
      content: 'echo: pick_color said red',
      attempts: 1,
      steps: 2,
      toolCalls: 1,
    });
    const page = await t.get(`/api/chat/threads/${body.threadId}/messages`);
    expect(page.body.messages.map((m: { role: string }) => m.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
    expect(page.body.messages[2]).toMatchObject({ toolCallId: call.toolCallId, content: 'red' });
  });

  test('a client tool answered over the stream (agent.run.tool_outputs)', async () => {
    const { body } = await t.post({
      content: 'choose [[tool:pick_color {}]]',
      clientTools: [colorTool],
    });
    const run = await waiting(body.runId);
    const [call] = run.pendingAction.toolCalls;
    await producer.xadd(
      t.config.redis.streamKey,
      '*',
      'type',
      'agent.run.tool_outputs',
      'requestId',
      'outputs-1',
      'runId',
      body.runId,
      'payload',
      JSON.stringify({ outputs: [{ toolCallId: call.toolCallId, output: 'blue' }] }),
    );
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'agent.run.completed',
      payload: { content: 'echo: pick_color said blue' },
    });
  });

  test('an approved call runs once; a denied one gives the model the reason; the free one runs at once', async () => {
    const before = http.calls.length;
    const { body } = await t.post({
      content:
        'do [[tool:guarded {"q":"yes"}]] [[tool:guarded {"q":"no"}]] [[tool:free {"q":"now"}]]',
      tools: ['guarded', 'free'],
    });
    const run = await waiting(body.runId);
    // The call that needs no approval ran before the pause.
    expect(http.calls.slice(before).map((c) => c.body)).toEqual(['{"q":"now"}']);
    expect(run.pendingAction.kind).toBe('approval');
    const [yes, no] = run.pendingAction.toolCalls;
    expect([yes.arguments, no.arguments]).toEqual(['{"q":"yes"}', '{"q":"no"}']);

    const response = await answer(body.runId, 'approvals', {
      decisions: [
        { toolCallId: yes.toolCallId, approve: true },
        { toolCallId: no.toolCallId, approve: false, reason: 'not today' },
      ],
    });
    expect(response.status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    expect(http.calls.slice(before).map((c) => c.body)).toEqual(['{"q":"now"}', '{"q":"yes"}']);
    const completed = events.at(-1);
    expect(completed?.type).toBe('agent.run.completed');
    expect(completed?.payload.content).toBe(
      'echo: guarded said {"received":{"q":"yes"}}; guarded said denied by the user: not today; free said {"received":{"q":"now"}}',
    );
    expect(completed?.payload).toMatchObject({ attempts: 1, toolCalls: 3 });
  });

  test('cancel while waiting: cancelled at once, the thread moves on', async () => {
    const threadId = `client-cancel-${Date.now()}`;
    const { body } = await t.post({
      threadId,
      content: 'choose [[tool:pick_color {}]]',
      clientTools: [colorTool],
    });
    await waiting(body.runId);
    const next = await t.post({ threadId, content: 'after it' });
    const cancel = await t.request(`/api/chat/runs/${body.runId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toEqual({ runId: body.runId, status: 'cancelled' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.cancelled');
    const after = await t.events.waitForTerminal(next.body.runId);
    expect(after.at(-1)?.type).toBe('agent.run.completed');
    // Answering a cancelled run: 409, nothing changes.
    const late = await answer(body.runId, 'tool-outputs', { outputs: [] });
    expect(late.status).toBe(409);
  });
});

describe.skipIf(!redisTestsEnabled())('RUN_ACTION_TIMEOUT_MS', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, RUN_ACTION_TIMEOUT_MS: '1000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('a run left waiting past the deadline fails action_timeout, once', async () => {
    const { body } = await t.post({
      content: 'choose [[tool:pick_color {}]]',
      clientTools: [colorTool],
    });
    const events = await t.events.waitForTerminal(body.runId, 15_000);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.tool_called',
      'agent.run.requires_action',
      'agent.run.failed',
    ]);
    expect(events.at(-1)?.payload).toMatchObject({ error: { code: 'action_timeout' } });
    const run = await waitForValue(
      async () => (await t.get(`/api/chat/runs/${body.runId}`)).body,
      (view) => view.status === 'failed',
    );
    expect(run.pendingAction).toBeNull();
  });
});
