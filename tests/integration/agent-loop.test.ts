import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { type McpHttpServer, startMcpHttpServer } from '../../harness/mcp-server';
import { freePort } from '../../harness/ports';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { waitForValue } from '../../harness/wait';
import { runStreamKey } from '../../src/events/stream-writer';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const STDIO_SERVER = join(import.meta.dir, '..', '..', 'harness', 'mcp-stdio.ts');
const lookupParams = {
  type: 'object',
  properties: { q: { type: 'string' } },
  required: ['q'],
  additionalProperties: false,
};

/**
 * The agent loop end to end: a message names tools, the fake model calls them, real HTTP tool
 * servers and real MCP servers (the SDK's, over Streamable HTTP and stdio) answer, and the run
 * ends with the model's answer to the results. Judged by the stream, the API and what the tool
 * servers saw.
 */
describe.skipIf(!redisTestsEnabled())('the agent loop', () => {
  let dir: string;
  let llm: FakeLlm;
  let http: HttpToolServer;
  let mcp: McpHttpServer;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-loop-'));
    llm = await startFakeLlm({ quiet: true });
    http = startHttpToolServer();
    mcp = startMcpHttpServer();
    const tool = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
      name,
      description: `the ${name} tool`,
      parameters: lookupParams,
      url: `${http.url}${path}`,
      ...extra,
    });
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({
        http: [
          tool('lookup', '/echo'),
          tool('broken', '/fail'),
          tool('slow', '/hang', { timeoutMs: 300 }),
          tool('forever', '/hang', { timeoutMs: 60_000 }),
          tool('big', '/big'),
        ],
        mcp: [
          { name: 'remote', url: mcp.url },
          { name: 'local', command: 'bun', args: [STDIO_SERVER] },
        ],
      }),
    );
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: file, TOOL_MAX_OUTPUT_CHARS: '1000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    http.stop();
    await mcp.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => llm.reset());

  const ask = async (content: string, tools: string[], extra: Record<string, unknown> = {}) => {
    const { status, body } = await t.post({ content, tools, ...extra });
    expect(status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    return { runId: body.runId as string, threadId: body.threadId as string, events };
  };
  const payloads = (events: { type: string; payload: unknown }[], type: string) =>
    // biome-ignore lint/suspicious/noExplicitAny: tests inspect payloads freely
    events.filter((e) => e.type === type).map((e) => e.payload as any);
  const callsTo = (path: string) => http.calls.filter((call) => call.path === path);

  test('on the run’s own stream a reply’s deltas never overtake the tool result they answer', async () => {
    for (let i = 0; i < 5; i++) {
      const { runId } = await ask(`order ${i} [[tool:lookup {"q":"paris"}]]`, ['lookup']);
      const entries = await t.deps.redis.xrange(runStreamKey(t.deps.stream, runId), '-', '+');
      const types = entries.map(([, fields]) => fields[fields.indexOf('type') + 1]);
      const result = types.indexOf('agent.run.tool_result');
      const firstDelta = types.indexOf('agent.run.delta');
      expect(result).toBeGreaterThan(0);
      expect(firstDelta).toBeGreaterThan(result);
    }
  });

  test('an HTTP tool: called once with its idempotency key, its result answered, all stored', async () => {
    const before = callsTo('/echo').length;
    const { runId, threadId, events } = await ask('look [[tool:lookup {"q":"paris"}]]', ['lookup']);
    expect(events.map((e) => e.type)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.tool_called',
      'agent.run.tool_result',
      'agent.run.completed',
    ]);
    const [called] = payloads(events, 'agent.run.tool_called');
    expect(called).toMatchObject({
      step: 1,
      name: 'lookup',
      arguments: '{"q":"paris"}',
      source: 'http',
    });
    const [result] = payloads(events, 'agent.run.tool_result');
    expect(result).toMatchObject({
      step: 1,
      toolCallId: called.toolCallId,
      name: 'lookup',
      isError: false,
      output: '{"received":{"q":"paris"}}',
    });
    const [completed] = payloads(events, 'agent.run.completed');
    expect(completed).toMatchObject({
      content: 'echo: lookup said {"received":{"q":"paris"}}',
      steps: 2,
      toolCalls: 1,
    });
    // The tool server saw one call, keyed by run and call.
    const calls = callsTo('/echo').slice(before);
    expect(calls.map((c) => c.body)).toEqual(['{"q":"paris"}']);
    expect(calls[0]?.headers['idempotency-key']).toBe(`${runId}.${called.toolCallId}`);
    expect(calls[0]?.headers['x-agent-run-id']).toBe(runId);
    expect(calls[0]?.headers['x-agent-thread-id']).toBe(threadId);
    // The model's second call had the call and its result, after the user message.
    const second = llm.requests[1]?.body;
    expect(second.messages.slice(-2)).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: called.toolCallId,
            type: 'function',
            function: { name: 'lookup', arguments: '{"q":"paris"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: called.toolCallId, content: '{"received":{"q":"paris"}}' },
    ]);
    // The thread holds the step, the result and the reply, in order; the run counts them.
    const page = await t.get(`/api/chat/threads/${threadId}/messages`);
    expect(page.body.messages.map((m: { role: string }) => m.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
    expect(page.body.messages[1]).toMatchObject({
      toolCalls: [{ toolCallId: called.toolCallId, name: 'lookup', arguments: '{"q":"paris"}' }],
    });
    expect(page.body.messages[2]).toMatchObject({
      toolCallId: called.toolCallId,
      name: 'lookup',
      isError: false,
    });
    const run = (await t.get(`/api/chat/runs/${runId}`)).body;
    expect(run).toMatchObject({ status: 'completed', steps: 2, toolCalls: 1, attempts: 1 });
    expect(run.reply.content).toBe(completed.content);
  });

  test('MCP tools over Streamable HTTP and stdio, two calls in one answer, results in call order', async () => {
    const { events } = await ask(
      'both [[tool:remote__echo {"text":"over http"}]] [[tool:local__echo {"text":"over stdio"}]]',
      ['remote__*', 'local__echo'],
    );
    const called = payloads(events, 'agent.run.tool_called');
    expect(called.map((c) => [c.step, c.name, c.source])).toEqual([
      [1, 'remote__echo', 'mcp'],
      [1, 'local__echo', 'mcp'],
    ]);
    const results = payloads(events, 'agent.run.tool_result');
    expect(results.every((r) => !r.isError)).toBe(true);
    // Each MCP call carried its idempotency key in _meta; the echo tool says so.
    for (const call of called) {
      const result = results.find((r) => r.toolCallId === call.toolCallId);
      expect(result.output).toContain(`"idempotencyKey":"${events[0]?.runId}.${call.toolCallId}"`);
    }
    const [completed] = payloads(events, 'agent.run.completed');
    expect(completed.content).toMatch(/^echo: remote__echo said .*over http.*; local__echo said/s);
    expect(completed).toMatchObject({ steps: 2, toolCalls: 2 });
  });

  test('invalid arguments: no call is made, the model sees the error and answers', async () => {
    const before = http.calls.length;
    const { events } = await ask('bad [[tool:lookup {"city":"paris"}]]', ['lookup']);
    expect(http.calls.length).toBe(before);
    const [result] = payloads(events, 'agent.run.tool_result');
    expect(result.isError).toBe(true);
    expect(result.output).toMatch(/invalid arguments/);
    expect(payloads(events, 'agent.run.completed')[0].content).toMatch(/lookup said invalid/);
  });

  test('a tool answering 500, one timing out and one returning 1 MB: error results, the output cut; the run completes', async () => {
    const { events } = await ask(
      'all [[tool:broken {"q":"a"}]] [[tool:slow {"q":"b"}]] [[tool:big {"q":"c"}]]',
      ['broken', 'slow', 'big'],
    );
    const results = payloads(events, 'agent.run.tool_result');
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(byName.broken).toMatchObject({ isError: true });
    expect(byName.broken.output).toMatch(/500/);
    expect(byName.slow).toMatchObject({ isError: true });
    expect(byName.slow.output).toMatch(/time/i);
    expect(byName.big.isError).toBe(false);
    // TOOL_MAX_OUTPUT_CHARS is 1000 here: the model was given at most that much.
    const tool = llm.requests[1]?.body.messages.find(
      (m: { role: string; tool_call_id?: string }) =>
        m.role === 'tool' && m.tool_call_id === byName.big.toolCallId,
    );
    expect(tool.content.length).toBeLessThanOrEqual(1000);
    expect(tool.content.length).toBeGreaterThan(900);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
  });

  test('a tool the run may not call gets an error result, and no call', async () => {
    const before = http.calls.length;
    const { events } = await ask('sneaky [[tool:big {"q":"x"}]]', ['lookup']);
    expect(http.calls.length).toBe(before);
    const [called] = payloads(events, 'agent.run.tool_called');
    expect(called.source).toBe('unknown');
    const [result] = payloads(events, 'agent.run.tool_result');
    expect(result).toMatchObject({ isError: true, name: 'big' });
    expect(result.output).toMatch(/not available to this run/);
  });

  test('a model error after a committed tool step: the retry does not call the tool again', async () => {
    llm.enqueue(
      { kind: 'tools', calls: [{ name: 'lookup', arguments: { q: 'once' } }] },
      { kind: 'status', status: 503 },
    );
    const before = callsTo('/echo').length;
    const { runId, events } = await ask('retry me', ['lookup']);
    expect(callsTo('/echo').length - before).toBe(1);
    expect(events.filter((e) => e.type === 'agent.run.tool_called')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'agent.run.started')).toHaveLength(2);
    const [completed] = payloads(events, 'agent.run.completed');
    expect(completed).toMatchObject({ attempts: 2, steps: 2, toolCalls: 1 });
    expect(completed.content).toBe('echo: lookup said {"received":{"q":"once"}}');
    // Three model calls: the step, the failed one, the answer; the last had the step's result.
    expect(llm.requests).toHaveLength(3);
    expect(llm.requests[2]?.body.messages.at(-1)).toMatchObject({ role: 'tool' });
    expect((await t.get(`/api/chat/runs/${runId}`)).body).toMatchObject({ steps: 2, toolCalls: 1 });
  });

  test('a model that numbers its calls afresh each step (call_0 twice): each call gets its own id and idempotency key', async () => {
    llm.enqueue(
      { kind: 'tools', calls: [{ name: 'lookup', arguments: { q: 'first' }, id: 'call_0' }] },
      { kind: 'tools', calls: [{ name: 'lookup', arguments: { q: 'second' }, id: 'call_0' }] },
    );
    const before = callsTo('/echo').length;
    const { runId, events } = await ask('twice', ['lookup']);
    const calls = callsTo('/echo').slice(before);
    expect(calls.map((c) => c.body)).toEqual(['{"q":"first"}', '{"q":"second"}']);
    const keys = calls.map((c) => c.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(2);
    const called = payloads(events, 'agent.run.tool_called');
    expect(called[0].toolCallId).toBe('call_0');
    expect(called[1].toolCallId).not.toBe('call_0');
    expect(keys).toEqual(called.map((c) => `${runId}.${c.toolCallId}`));
    expect(payloads(events, 'agent.run.completed')[0]).toMatchObject({
      content: 'echo: lookup said {"received":{"q":"second"}}',
      steps: 3,
      toolCalls: 2,
    });
  });

  test('cancel while a tool runs: the call is aborted and the run ends cancelled', async () => {
    const abortedBefore = http.aborted;
    const { body } = await t.post({
      content: 'wait [[tool:forever {"q":"x"}]]',
      tools: ['forever'],
    });
    await t.events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.tool_called'),
      'the tool call',
    );
    await waitForValue(
      () => callsTo('/hang').length,
      (n) => n > 0,
    );
    const cancel = await t.request(`/api/chat/runs/${body.runId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.cancelled');
    await waitForValue(
      () => http.aborted,
      (n) => n > abortedBefore,
    );
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body.status).toBe('cancelled');
  });
});

describe.skipIf(!redisTestsEnabled())('RUN_MAX_STEPS', () => {
  let dir: string;
  let llm: FakeLlm;
  let http: HttpToolServer;
  let t: TestApp;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-steps-'));
    llm = await startFakeLlm({ quiet: true });
    http = startHttpToolServer();
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({
        http: [
          { name: 'lookup', description: 'x', parameters: lookupParams, url: `${http.url}/echo` },
        ],
      }),
    );
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: file, RUN_MAX_STEPS: '2' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    http.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the last step is offered the tools with tool_choice none, and the run ends with its answer', async () => {
    const { body } = await t.post({ content: 'go [[tool:lookup {"q":"1"}]]', tools: ['lookup'] });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
    expect(llm.requests.map((r) => r.body.tool_choice ?? 'auto')).toEqual(['auto', 'none']);
    expect(llm.requests[1]?.body.tools).toHaveLength(1);
    expect(events.at(-1)?.payload).toMatchObject({ steps: 2, toolCalls: 1 });
  });

  test('a model that calls tools on the last step anyway gives no reply: llm_bad_response, retried', async () => {
    llm.reset();
    llm.enqueue(
      { kind: 'tools', calls: [{ name: 'lookup', arguments: { q: '1' } }] },
      { kind: 'tools', calls: [{ name: 'lookup', arguments: { q: '2' } }] },
    );
    const { body } = await t.post({ content: 'stubborn', tools: ['lookup'] });
    const events = await t.events.waitForTerminal(body.runId);
    // The retry goes on from the committed step: one tool call in all, then the answer.
    expect(events.filter((e) => e.type === 'agent.run.tool_called')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({
      type: 'agent.run.completed',
      payload: { attempts: 2, steps: 2 },
    });
  });
});

describe.skipIf(!redisTestsEnabled())('an MCP server down at start-up', () => {
  let dir: string;
  let llm: FakeLlm;
  let t: TestApp;
  let late: McpHttpServer | undefined;
  let port: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-late-mcp-'));
    llm = await startFakeLlm({ quiet: true });
    port = await freePort();
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({ mcp: [{ name: 'late', url: `http://127.0.0.1:${port}/mcp` }] }),
    );
    t = await startTestApp({
      env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: file },
      toolRetry: { initialMs: 50, maxMs: 200 },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    await late?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('its tools are missing until it answers; then a run calls them', async () => {
    const before = await t.post({ content: 'x', tools: ['late__echo'] });
    expect(before.status).toBe(400);
    expect(before.body.error.code).toBe('tool_not_found');

    late = startMcpHttpServer({ port });
    await waitForValue(
      async () =>
        (await t.get('/api/chat/tools')).body.tools.map((tool: { name: string }) => tool.name),
      (names) => names.includes('late__echo'),
    );
    const { status, body } = await t.post({
      content: 'now [[tool:late__echo {"text":"back"}]]',
      tools: ['late__*'],
    });
    expect(status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
    expect(events.at(-1)?.payload.content).toMatch(/^echo: late__echo said .*"text":"back"/s);
    expect(late.log.calls.map((call) => call.name)).toEqual(['echo']);
  });
});
