import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type McpHttpServer, startMcpHttpServer } from '../../harness/mcp-server';
import { freePort } from '../../harness/ports';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { waitForValue } from '../../harness/wait';
import { Redis } from 'ioredis';
import { AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/metrics/metrics';
import type { ToolsFile } from '../../src/tools/model';
import { createToolRegistry, type ToolRegistry } from '../../src/tools/service';
import { readToolsFile } from '../../src/tools/tools-file';
import { startTestApp, type TestApp } from '../support/app';
import { resolveRefs } from '../support/openapi';
import { addStreamRequest } from '../support/producer';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

const STDIO_SERVER = join(import.meta.dir, '..', '..', 'harness', 'mcp-stdio.ts');
const dir = mkdtempSync(join(tmpdir(), 'tools-test-'));
let fileCounter = 0;
const writeFile = (content: unknown) => {
  const path = join(dir, `tools-${fileCounter++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};
/** A variable as the tools file writes it: a dollar sign and the name in braces. */
const ref = (name: string) => '$'.concat('{', name, '}');
const params = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const ctx = (toolCallId: string, signal?: AbortSignal) => ({
  runId: 'run_test',
  threadId: 'thr_test',
  toolCallId,
  signal,
});

describe('the tools file', () => {
  const weather = {
    name: 'weather',
    description: 'Weather',
    parameters: params,
    url: 'http://x/w',
  };

  test('a good file, with its variables filled in from the environment', () => {
    const path = writeFile({
      http: [{ ...weather, headers: { authorization: `Bearer ${ref('TOKEN')}` }, approval: true }],
      mcp: [
        { name: 'files', url: `http://${ref('HOST')}/mcp` },
        { name: 'local', command: 'bun', args: ['x.ts'], env: { KEY: ref('TOKEN') } },
      ],
    });
    const { file, problems } = readToolsFile(path, { TOKEN: 's3cret', HOST: 'mcp.internal:8080' });
    expect(problems).toEqual([]);
    expect(file?.http[0]?.headers).toEqual({ authorization: 'Bearer s3cret' });
    expect(file?.mcp).toEqual([
      { name: 'files', url: 'http://mcp.internal:8080/mcp' },
      { name: 'local', command: 'bun', args: ['x.ts'], env: { KEY: 's3cret' } },
    ]);
  });

  test.each([
    ['not JSON', '{"http": [', /not JSON/],
    [
      'a missing variable',
      { http: [{ ...weather, url: `http://${ref('NOPE')}/w` }] },
      /\$\{NOPE\} is not set/,
    ],
    ['a wrong shape', { http: [{ name: 'weather' }] }, /\/http\/0/],
    ['an unknown field', { http: [weather], sse: [] }, /\(root\)|sse/],
    [
      'a duplicate tool name',
      { http: [weather, weather] },
      /\/http\/1\/name: "weather" is a duplicate/,
    ],
    [
      'a duplicate MCP server',
      {
        mcp: [
          { name: 'a', url: 'http://x' },
          { name: 'a', command: 'x' },
        ],
      },
      /\/mcp\/1\/name: "a" is a duplicate/,
    ],
    [
      'an invalid parameters schema',
      {
        http: [
          { ...weather, parameters: { type: 'object', properties: { city: { type: 'nope' } } } },
        ],
      },
      /\/http\/0\/parameters: not a valid JSON Schema/,
    ],
    [
      'parameters that are not an object schema',
      { http: [{ ...weather, parameters: { type: 'string' } }] },
      /\/http\/0\/parameters: .*"type": "object"/,
    ],
    ['a bad tool name', { http: [{ ...weather, name: 'the weather' }] }, /\/http\/0\/name/],
    [
      'a server name with __',
      { mcp: [{ name: 'my__files', url: 'http://x' }] },
      /may not contain "__"/,
    ],
  ])('%s is named', (_case, content, problem) => {
    const { file, problems } = readToolsFile(writeFile(content), {});
    expect(file).toBeUndefined();
    expect(problems.join('\n')).toMatch(problem);
  });

  test('a bad file stops the server: loadConfig throws a ConfigError naming TOOLS_FILE', async () => {
    const { ConfigError, loadConfig } = await import('../../src/config');
    const path = writeFile({ http: [weather, weather] });
    expect(() => loadConfig({ TOOLS_FILE: path })).toThrow(ConfigError);
    expect(() => loadConfig({ TOOLS_FILE: path })).toThrow(`TOOLS_FILE: ${path}: /http/1/name`);
    expect(
      loadConfig({ TOOLS_FILE: writeFile({ http: [weather] }) }).tools.servers.http,
    ).toHaveLength(1);
    // The variables come from the environment loadConfig reads, and only from it.
    const secret = writeFile({ mcp: [{ name: 'files', url: `http://${ref('MCP_HOST')}/mcp` }] });
    expect(loadConfig({ TOOLS_FILE: secret, MCP_HOST: 'mcp:1' }).tools.servers.mcp).toEqual([
      { name: 'files', url: 'http://mcp:1/mcp' },
    ]);
    expect(() => loadConfig({ TOOLS_FILE: secret })).toThrow(/MCP_HOST/);
  });
});

function registry(servers: Partial<ToolsFile>, maxOutputChars = 20_000) {
  const metrics = createMetrics();
  const tools = createToolRegistry({
    servers: { http: [], mcp: [], ...servers },
    maxOutputChars,
    logger: createLogger('silent'),
    metrics,
    retry: { initialMs: 50, maxMs: 200 },
  });
  return { tools, metrics };
}

describe('HTTP tools', () => {
  let server: HttpToolServer;
  let tools: ToolRegistry;
  let metrics: ReturnType<typeof createMetrics>;
  const tool = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
    name,
    description: `${name} tool`,
    parameters: params,
    url: `${server.url}${path}`,
    ...extra,
  });
  beforeAll(async () => {
    server = startHttpToolServer();
    ({ tools, metrics } = registry(
      {
        http: [
          tool('echo', '/echo', { headers: { authorization: 'Bearer tool-key' } }),
          tool('fail', '/fail'),
          tool('hang', '/hang', { timeoutMs: 200 }),
          tool('hang_long', '/hang'),
          tool('big', '/big'),
          tool('redirect', '/redirect'),
        ],
      },
      5000,
    ));
    await tools.start();
  });
  afterAll(async () => {
    await tools.close();
    await server.stop();
  });
  const callsTo = (path: string) => server.calls.filter((call) => call.path === path);

  test('a call POSTs the arguments with the idempotency key, the run ids and the headers', async () => {
    const outcome = await tools.call('echo', '{"city":"Paris"}', ctx('call_1'));
    expect(outcome).toMatchObject({ isError: false, output: '{"received":{"city":"Paris"}}' });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    const [call] = callsTo('/echo');
    expect(call?.body).toBe('{"city":"Paris"}');
    expect(call?.headers).toMatchObject({
      'idempotency-key': 'run_test.call_1',
      'x-agent-run-id': 'run_test',
      'x-agent-thread-id': 'thr_test',
      authorization: 'Bearer tool-key',
      'content-type': 'application/json',
    });
    const scrape = await metrics.registry.metrics();
    expect(scrape).toMatch(/tool_calls_total\{tool="echo",source="http",outcome="ok"\} 1/);
  });

  test('invalid JSON and arguments against the schema are error results, and no call is made', async () => {
    const before = server.calls.length;
    const notJson = await tools.call('echo', '{"city":', ctx('call_2'));
    expect(notJson.isError).toBe(true);
    expect(notJson.output).toStartWith('the arguments are not JSON');
    const wrong = await tools.call('echo', '{"city": 42}', ctx('call_3'));
    expect(wrong).toMatchObject({
      isError: true,
      output: 'invalid arguments: arguments/city must be string',
    });
    const missing = await tools.call('echo', '{}', ctx('call_4'));
    expect(missing.output).toContain("must have required property 'city'");
    expect(server.calls.length).toBe(before);
    expect(await metrics.registry.metrics()).toMatch(
      /tool_calls_total\{tool="echo",source="http",outcome="invalid_arguments"\} 3/,
    );
  });

  test('a 500 is an error result with the status and the start of the body', async () => {
    const outcome = await tools.call('fail', '{"city":"x"}', ctx('call_5'));
    expect(outcome.isError).toBe(true);
    expect(outcome.output).toStartWith('HTTP 500: database on fire !!!');
    expect(outcome.output.length).toBeLessThan(1100);
  });

  test('a tool that does not answer in timeoutMs is a timeout result', async () => {
    const outcome = await tools.call('hang', '{"city":"x"}', ctx('call_6'));
    expect(outcome).toMatchObject({
      isError: true,
      output: 'the call to hang timed out after 200 ms',
    });
    expect(outcome.durationMs).toBeLessThan(5000);
  });

  test('a 1 MB body is cut to TOOL_MAX_OUTPUT_CHARS, and says so', async () => {
    const outcome = await tools.call('big', '{"city":"x"}', ctx('call_7'));
    expect(outcome.isError).toBe(false);
    expect(outcome.output.length).toBeLessThanOrEqual(5000);
    expect(outcome.output).toStartWith('xxxx');
    expect(outcome.output).toEndWith('[output cut: longer than 5000 characters]');
  });

  test('a redirect is not followed: an error result', async () => {
    const echoes = callsTo('/echo').length;
    const outcome = await tools.call('redirect', '{"city":"x"}', ctx('call_8'));
    expect(outcome).toMatchObject({ isError: true });
    expect(outcome.output).toStartWith('HTTP 302: redirects are not followed');
    expect(callsTo('/echo').length).toBe(echoes);
  });

  test("the caller's abort stops the call in flight", async () => {
    const controller = new AbortController();
    const pending = tools.call('hang_long', '{"city":"x"}', ctx('call_9', controller.signal));
    await waitForValue(
      () => callsTo('/hang').length,
      (n) => n >= 2,
    );
    controller.abort();
    const outcome = await pending;
    expect(outcome).toMatchObject({ isError: true, output: 'the call to hang_long was cancelled' });
    expect(
      await waitForValue(
        () => server.aborted,
        (n) => n >= 2,
      ),
    ).toBeGreaterThanOrEqual(2);
  });

  test('an unknown tool is an error result, not a throw', async () => {
    expect(await tools.call('nope', '{}', ctx('call_10'))).toMatchObject({
      isError: true,
      output: 'no tool named "nope"',
    });
  });
});

describe('MCP servers', () => {
  let mcp: McpHttpServer;
  let tools: ToolRegistry;
  beforeAll(async () => {
    mcp = startMcpHttpServer();
    ({ tools } = registry({
      http: [
        { name: 'weather', description: 'w', parameters: params, url: 'http://127.0.0.1:9/w' },
      ],
      mcp: [
        { name: 'remote', url: mcp.url, headers: { authorization: 'Bearer mcp-key' } },
        { name: 'local', command: 'bun', args: [STDIO_SERVER], approval: true },
      ],
    }));
    await tools.start();
  });
  afterAll(async () => {
    await tools.close();
    await mcp.stop();
  });

  test('both transports: tools listed as <server>__<tool> with their input schemas', () => {
    const names = tools.list().map((tool) => tool.name);
    expect(names).toEqual([
      'weather',
      'remote__echo',
      'remote__fail',
      'remote__wait',
      'remote__add_tool',
      'local__echo',
      'local__fail',
      'local__wait',
      'local__add_tool',
    ]);
    expect(tools.get('local__echo')).toMatchObject({
      source: 'mcp',
      server: 'local',
      approval: true,
      parameters: { type: 'object', required: ['text'] },
    });
    expect(tools.get('remote__echo')?.approval).toBe(false);
    expect(mcp.headers.some((h) => h.get('authorization') === 'Bearer mcp-key')).toBe(true);
  });

  test.each(['remote', 'local'])(
    '%s: a call carries _meta.idempotencyKey; content is mapped',
    async (server) => {
      const outcome = await tools.call(`${server}__echo`, '{"text":"hi"}', ctx(`call_${server}`));
      expect(outcome.isError).toBe(false);
      const [text, image] = outcome.output.split('\n');
      // The server's own answer says what it saw: the arguments and the key.
      expect(JSON.parse(text as string)).toEqual({
        arguments: { text: 'hi' },
        idempotencyKey: `run_test.call_${server}`,
      });
      expect(JSON.parse(image as string)).toMatchObject({ type: 'image', mimeType: 'image/png' });
      if (server === 'remote') {
        expect(mcp.log.calls.at(-1)?.meta).toMatchObject({
          idempotencyKey: 'run_test.call_remote',
        });
      }
    },
  );

  test.each(['remote', 'local'])(
    '%s: isError is an error result; bad arguments make no call',
    async (server) => {
      expect(await tools.call(`${server}__fail`, '{}', ctx('f'))).toMatchObject({
        isError: true,
        output: 'the tool failed on purpose',
      });
      const calls = mcp.log.calls.length;
      const bad = await tools.call(`${server}__echo`, '{"text": 1}', ctx('g'));
      expect(bad).toMatchObject({
        isError: true,
        output: 'invalid arguments: arguments/text must be string',
      });
      expect(mcp.log.calls.length).toBe(calls);
    },
  );

  test('an abort cancels the MCP call: the server sees the cancellation', async () => {
    const controller = new AbortController();
    const pending = tools.call('remote__wait', '{}', ctx('w', controller.signal));
    await waitForValue(
      () => mcp.log.calls.filter((c) => c.name === 'wait').length,
      (n) => n >= 1,
    );
    controller.abort();
    expect((await pending).output).toBe('the call to remote__wait was cancelled');
    expect(
      await waitForValue(
        () => mcp.log.cancelled,
        (c) => c.length > 0,
      ),
    ).toEqual(['wait']);
  });

  test.each(['remote', 'local'])('%s: tools/list_changed refreshes the list', async (server) => {
    await tools.call(`${server}__add_tool`, `{"name":"added_${server}"}`, ctx('a'));
    const names = await waitForValue(
      () => tools.list().map((tool) => tool.name),
      (list) => list.includes(`${server}__added_${server}`),
    );
    expect(names).toContain(`${server}__added_${server}`);
  });

  test('resolve: names, <server>__*, and an unknown name or server', () => {
    expect(tools.resolve(['weather', 'local__*', 'weather'])).toEqual([
      'weather',
      'local__echo',
      'local__fail',
      'local__wait',
      'local__add_tool',
      'local__added_local',
    ]);
    expect(tools.resolve(['remote__echo'])).toEqual(['remote__echo']);
    for (const names of [['nope'], ['nope__*'], ['weather', 'remote__nope']]) {
      let thrown: unknown;
      try {
        tools.resolve(names);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(AppError);
      expect((thrown as AppError).code).toBe('tool_not_found');
      expect((thrown as AppError).status).toBe(400);
    }
  });
});

describe('an MCP server down at start', () => {
  test('is retried with backoff; its tools appear once it answers', async () => {
    const port = await freePort();
    const { tools } = registry({ mcp: [{ name: 'late', url: `http://127.0.0.1:${port}/mcp` }] });
    let mcp: McpHttpServer | undefined;
    try {
      await tools.start();
      expect(tools.list()).toEqual([]);
      expect(() => tools.resolve(['late__echo'])).toThrow(AppError);
      expect(tools.resolve(['late__*'])).toEqual([]); // a known server, with no tools yet
      expect(await tools.call('late__echo', '{"text":"x"}', ctx('l'))).toMatchObject({
        isError: true,
      });
      mcp = startMcpHttpServer({ port });
      const names = await waitForValue(
        () => tools.list().map((tool) => tool.name),
        (list) => list.length > 0,
      );
      expect(names).toContain('late__echo');
      expect((await tools.call('late__echo', '{"text":"x"}', ctx('l2'))).isError).toBe(false);
    } finally {
      await tools.close();
      await mcp?.stop();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('GET /api/chat/tools', () => {
  test('lists the HTTP and MCP tools, behind API_KEYS', async () => {
    const mcp = startMcpHttpServer();
    const path = writeFile({
      http: [
        {
          name: 'weather',
          description: 'Weather',
          parameters: params,
          url: 'http://127.0.0.1:9/w',
        },
      ],
      mcp: [{ name: 'remote', url: mcp.url, approval: true }],
    });
    const t = await startTestApp({ worker: false, env: { TOOLS_FILE: path, API_KEYS: 'k1' } });
    try {
      expect((await t.request('/api/chat/tools')).status).toBe(401);
      const response = await t.request('/api/chat/tools', {
        headers: { authorization: 'Bearer k1' },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { tools: Record<string, unknown>[] };
      expect(body.tools[0]).toEqual({
        name: 'weather',
        description: 'Weather',
        parameters: params,
        source: 'http',
        approval: false,
      });
      expect(body.tools.slice(1).map((tool) => tool.name)).toEqual([
        'remote__echo',
        'remote__fail',
        'remote__wait',
        'remote__add_tool',
      ]);
      expect(body.tools[1]).toMatchObject({ source: 'mcp', server: 'remote', approval: true });
      const doc = (await (await t.request('/swagger/json')).json()) as {
        paths: Record<string, { get: { responses: Record<string, unknown> } }>;
      };
      expect(JSON.stringify(doc.paths['/api/chat/tools']?.get.responses['200'])).toContain(
        'files__read_file',
      );
    } finally {
      await t.close();
      await mcp.stop();
    }
  });
});

describe.skipIf(!redisTestsEnabled())('tools on a message', () => {
  let mcp: McpHttpServer;
  let t: TestApp;
  const mcpTools = ['remote__echo', 'remote__fail', 'remote__wait', 'remote__add_tool'];
  beforeAll(async () => {
    mcp = startMcpHttpServer();
    const path = writeFile({
      http: [
        { name: 'weather', description: 'W', parameters: params, url: 'http://127.0.0.1:9/w' },
        { name: 'rain', description: 'R', parameters: params, url: 'http://127.0.0.1:9/r' },
      ],
      mcp: [
        { name: 'remote', url: mcp.url },
        // Configured but not answering: its tools are unknown for now.
        { name: 'late', url: `http://127.0.0.1:${await freePort()}/mcp` },
      ],
    });
    t = await startTestApp({
      worker: false,
      toolRetry: { initialMs: 60_000, maxMs: 60_000 },
      env: { TOOLS_FILE: path, CHAT_DEFAULT_TOOLS: 'weather,late__echo,nope,remote__echo' },
    });
  });
  afterAll(async () => {
    await t.close();
    await mcp.stop();
  });

  const runOf = async (runId: string) => {
    const { status, body } = await t.get(`/api/chat/runs/${runId}`);
    expect(status).toBe(200);
    return body;
  };

  test.each([
    ['an unknown name', ['weather', 'nope'], { name: 'nope' }],
    ['an unknown MCP server', ['ghost__*'], { name: 'ghost__*' }],
    ['a tool of a server not connected yet', ['late__echo'], { name: 'late__echo' }],
  ])('%s is a 400 tool_not_found, and nothing is stored', async (_case, tools, details) => {
    const before = await rowCounts(t.sql);
    const { status, body } = await t.post(
      { content: 'use them', tools },
      { 'idempotency-key': `unknown-${tools.join()}` },
    );
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'tool_not_found', details });
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test.each([
    ['not an array', 'weather'],
    ['an entry that is not a name', ['the weather']],
    ['more than 128 entries', Array.from({ length: 129 }, () => 'weather')],
  ])('`tools` %s is a 400 invalid_request', async (_case, tools) => {
    const { status, body } = await t.post({ content: 'x', tools });
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
  });

  test('names and <server>__* are resolved onto the run; a new run has no steps yet', async () => {
    const { status, body } = await t.post({
      content: 'weather?',
      tools: ['rain', 'remote__*', 'weather', 'rain'],
    });
    expect(status).toBe(202);
    const run = await runOf(body.runId);
    expect(run).toMatchObject({
      status: 'queued',
      tools: ['rain', ...mcpTools, 'weather'],
      steps: 0,
      toolCalls: 0,
    });
  });

  test('an empty list means no tools', async () => {
    const { body } = await t.post({ content: 'no tools', tools: [] });
    expect((await runOf(body.runId)).tools).toEqual([]);
  });

  test.each([
    ['absent', {}],
    ['null', { tools: null }],
  ])('`tools` %s: CHAT_DEFAULT_TOOLS, without the names not known now', async (_case, extra) => {
    const { status, body } = await t.post({ content: 'defaults', ...extra });
    expect(status).toBe(202);
    // `late__echo` (its server is down) and `nope` are left out, not refused.
    expect((await runOf(body.runId)).tools).toEqual(['weather', 'remote__echo']);
  });

  test('an Idempotency-Key replay: the same tools replay, other tools are a 409', async () => {
    const headers = { 'idempotency-key': 'tools-key-1' };
    const first = await t.post({ content: 'once', tools: ['weather'] }, headers);
    expect(first.status).toBe(202);
    const again = await t.post({ content: 'once', tools: ['weather'] }, headers);
    expect(again).toEqual(first);
    for (const tools of [['rain'], [], null]) {
      const reused = await t.post({ content: 'once', tools }, headers);
      expect(reused.status).toBe(409);
      expect(reused.body.error.code).toBe('idempotency_key_reused');
    }
    // A key first used without `tools`: `tools` absent or null is that same request.
    const plainHeaders = { 'idempotency-key': 'tools-key-2' };
    const plain = await t.post({ content: 'plain' }, plainHeaders);
    expect(await t.post({ content: 'plain', tools: null }, plainHeaders)).toEqual(plain);
    expect((await t.post({ content: 'plain', tools: ['weather'] }, plainHeaders)).status).toBe(409);
  });

  test('Swagger documents `tools`, tool_not_found and the run view fields', async () => {
    const doc = JSON.stringify(await (await t.request('/swagger/json')).json());
    for (const text of ['<server>__*', 'tool_not_found', 'toolCallId', 'CHAT_DEFAULT_TOOLS']) {
      expect(doc).toContain(text);
    }
    const parsed = JSON.parse(doc);
    const runProps = JSON.stringify(
      resolveRefs(parsed, parsed.paths['/api/chat/runs/{runId}']?.get.responses['200']),
    );
    for (const field of ['"tools"', '"steps"', '"toolCalls"']) expect(runProps).toContain(field);
  });
});

describe.skipIf(!redisTestsEnabled())('tools on a stream request', () => {
  test('resolved like a post; an unknown one is rejected tool_not_found', async () => {
    const path = writeFile({
      http: [
        { name: 'weather', description: 'W', parameters: params, url: 'http://127.0.0.1:9/w' },
      ],
    });
    const t = await startTestApp({ env: { TOOLS_FILE: path } });
    const producer = new Redis(t.config.redis.url);
    try {
      const key = t.config.redis.streamKey;
      const before = await rowCounts(t.sql);
      await addStreamRequest(producer, key, 'tools-bad', { content: 'x', tools: ['nope'] });
      const rejection = () =>
        t.events.entries.find(
          (e) => e.type === 'agent.run.rejected' && e.requestId === 'tools-bad',
        );
      await t.events.waitFor(() => rejection() !== undefined, 'the rejection');
      expect(rejection()?.payload.error).toMatchObject({ code: 'tool_not_found' });
      expect(await rowCounts(t.sql)).toEqual(before);
      await addStreamRequest(producer, key, 'tools-ok', { content: 'x', tools: ['weather'] });
      const requested = () =>
        t.events.entries.find(
          (e) => e.type === 'agent.run.requested' && e.payload.requestId === 'tools-ok',
        );
      await t.events.waitFor(() => requested() !== undefined, 'the run');
      expect((await t.get(`/api/chat/runs/${requested()?.runId}`)).body.tools).toEqual(['weather']);
    } finally {
      producer.disconnect();
      await t.close();
    }
  });
});
