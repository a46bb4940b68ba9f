import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventReader } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../../harness/processes';
import { createTestDatabase } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import { redisTestsEnabled } from '../support/redis';

// Real processes take seconds to start, die and recover.
setDefaultTimeout(60_000);

/**
 * Workers really killed in the middle of an agent's steps: the API and workers are
 * `bun src/main.ts` children over a private redis-server and one store; the tool is a real HTTP
 * server that counts its calls. A committed tool result is never asked for again, and a call cut
 * off in flight is made again with the same Idempotency-Key.
 */
describe.skipIf(!redisTestsEnabled())('a worker killed during a tool step', () => {
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let dir: string;
  let env: Record<string, string>;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let events: EventReader;
  const children: ServerProcess[] = [];
  /** Every call the tool saw, with its Idempotency-Key; `holdNext` holds the next one open. */
  const calls: { key: string; body: string }[] = [];
  let holdNext = false;
  let tool: ReturnType<typeof Bun.serve>;

  const spawn = async (role: 'api' | 'worker') => {
    const child = await spawnServer(role, env);
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'agent-tool-crash-'));
    database = await createTestDatabase(dir);
    tool = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(request) {
        const body = await request.text();
        calls.push({ key: request.headers.get('idempotency-key') ?? '', body });
        if (holdNext) {
          holdNext = false;
          return new Promise<Response>(() => {}); // its caller dies first
        }
        return Response.json({ charged: JSON.parse(body) });
      },
    });
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({
        http: [
          {
            name: 'charge',
            description: 'Charges a card: must happen once',
            parameters: { type: 'object', properties: { cents: { type: 'integer' } } },
            url: `http://127.0.0.1:${tool.port}/charge`,
          },
          {
            name: 'refund',
            description: 'Refunds a card: only with the user’s approval',
            parameters: { type: 'object', properties: { cents: { type: 'integer' } } },
            url: `http://127.0.0.1:${tool.port}/refund`,
            approval: true,
          },
        ],
      }),
    );
    env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_STREAM_KEY: `tool-crash-${Date.now()}`,
      OPENAI_BASE_URL: llm.url,
      TOOLS_FILE: file,
      ADMIN_PASSWORD: 'tool-crash',
      RUN_LOCK_MS: '1500',
      RUN_STALLED_CHECK_MS: '500',
      RUN_BACKOFF_MS: '50',
    };
    events = new EventReader(redis.url, env.REDIS_STREAM_KEY as string);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await child.kill('SIGKILL');
    llm.reset();
  });
  afterAll(async () => {
    await events.close();
    tool.stop(true);
    await llm.stop();
    await redis.stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const distinctTypes = (runId: string) => events.distinctForRun(runId).map((e) => e.type);
  const threadRoles = async (api: ServerProcess, threadId: string) => {
    const page = await fetch(`${api.baseUrl}/api/chat/threads/${threadId}/messages`);
    return ((await page.json()) as { messages: { role: string }[] }).messages.map((m) => m.role);
  };

  test('SIGKILLed right after a tool result was committed: the tool is not called again', async () => {
    const api = await spawn('api');
    const doomed = await spawn('worker');
    // Step 1 calls the tool; step 2's model call stalls, so the worker dies inside it.
    llm.enqueue({ kind: 'tools', calls: [{ name: 'charge', arguments: { cents: 500 } }] });
    llm.setDefault({ kind: 'stall' });
    const before = calls.length;
    const { body } = await postMessage(api.baseUrl, { content: 'pay', tools: ['charge'] });
    await events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.tool_result'),
      'the committed tool result',
    );
    await llm.waitForRequests(2);
    expect(await doomed.kill('SIGKILL')).not.toBe(0);

    llm.reset(); // the echo again
    await spawn('worker');
    await events.waitForTerminal(body.runId, 30_000);
    expect(calls.length - before).toBe(1);
    expect(distinctTypes(body.runId)).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.tool_called',
      'agent.run.tool_result',
      'agent.run.started',
      'agent.run.completed',
    ]);
    const completed = events.distinctForRun(body.runId).at(-1);
    expect(completed?.payload).toMatchObject({
      content: 'echo: charge said {"charged":{"cents":500}}',
      attempts: 2,
      steps: 2,
      toolCalls: 1,
    });
    expect(await threadRoles(api, body.threadId)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
  });

  test('SIGKILLed while the tool call was in flight: the call is made again with the same Idempotency-Key', async () => {
    const api = await spawn('api');
    const doomed = await spawn('worker');
    llm.enqueue({ kind: 'tools', calls: [{ name: 'charge', arguments: { cents: 700 } }] });
    holdNext = true;
    const before = calls.length;
    const { body } = await postMessage(api.baseUrl, { content: 'pay again', tools: ['charge'] });
    await waitForValue(
      () => calls.length - before,
      (n) => n >= 1,
      20_000,
    );
    expect(await doomed.kill('SIGKILL')).not.toBe(0);

    await spawn('worker');
    await events.waitForTerminal(body.runId, 30_000);
    const made = calls.slice(before);
    expect(made).toHaveLength(2);
    const [called] = events
      .distinctForRun(body.runId)
      .filter((e) => e.type === 'agent.run.tool_called');
    expect(made.map((c) => c.key)).toEqual([
      `${body.runId}.${called?.payload.toolCallId}`,
      `${body.runId}.${called?.payload.toolCallId}`,
    ]);
    expect(distinctTypes(body.runId).filter((type) => type.includes('tool'))).toEqual([
      'agent.run.tool_called',
      'agent.run.tool_result',
    ]);
    expect(events.distinctForRun(body.runId).at(-1)).toMatchObject({
      type: 'agent.run.completed',
      payload: { content: 'echo: charge said {"charged":{"cents":700}}', toolCalls: 1 },
    });
  });

  test('a run waiting for approval outlives its worker: the answer is kept, and another worker goes on', async () => {
    const api = await spawn('api');
    const doomed = await spawn('worker');
    llm.enqueue({ kind: 'tools', calls: [{ name: 'refund', arguments: { cents: 300 } }] });
    const before = calls.length;
    const { body } = await postMessage(api.baseUrl, { content: 'refund me', tools: ['refund'] });
    const [pause] = await events
      .waitFor(
        (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.requires_action'),
        'the run to wait for approval',
      )
      .then((all) =>
        all.filter((e) => e.runId === body.runId && e.type === 'agent.run.requires_action'),
      );
    // The worker holds nothing while the run waits; killing it loses nothing.
    expect(await doomed.kill('SIGKILL')).not.toBe(0);
    const toolCallId = pause?.payload.toolCalls[0].toolCallId;
    const approved = await fetch(`${api.baseUrl}/api/chat/runs/${body.runId}/approvals`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decisions: [{ toolCallId, approve: true }] }),
    });
    expect(approved.status).toBe(202);

    await spawn('worker');
    await events.waitForTerminal(body.runId, 30_000);
    expect(calls.slice(before).map((c) => c.key)).toEqual([`${body.runId}.${toolCallId}`]);
    expect(events.distinctForRun(body.runId).at(-1)).toMatchObject({
      type: 'agent.run.completed',
      payload: { content: 'echo: refund said {"charged":{"cents":300}}', attempts: 1 },
    });
  });
});
