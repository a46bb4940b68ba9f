import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeLlm, type RecordedRequest, startFakeLlm } from '../../harness/fake-llm';
import { messageTokens } from '../../src/memory/tokens';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

/** The fake's context window and ours: an 8 192-token local model. */
const CONTEXT = 8192;
const MAX_OUTPUT = 1024;
const long = (i: number) => `message ${i}: ${'lorem ipsum dolor sit amet '.repeat(60)}`.trim();

/**
 * Memory fitted to a small model, end to end: the fake model has a real context window (it
 * refuses a prompt over it, as the servers it imitates do) and counts each prompt it receives;
 * the run's budget report must add up to what it received.
 */
describe.skipIf(!redisTestsEnabled())('memory against an 8 192-token model', () => {
  let dir: string;
  let llm: FakeLlm;
  let t: TestApp;
  let toolServer: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memory-loop-'));
    llm = await startFakeLlm({ quiet: true, contextTokens: CONTEXT });
    // A tool whose answer is large: ~3 000 tokens, added to the prompt in the middle of a run.
    toolServer = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: () => new Response('data '.repeat(3000)),
    });
    const file = join(dir, 'tools.json');
    writeFileSync(
      file,
      JSON.stringify({
        http: [
          {
            name: 'fetch_report',
            description: 'A long report',
            parameters: { type: 'object', properties: {} },
            url: `http://127.0.0.1:${toolServer.port}/report`,
          },
        ],
      }),
    );
    t = await startTestApp({
      env: {
        OPENAI_BASE_URL: llm.url,
        CHAT_CONTEXT_TOKENS: String(CONTEXT),
        CHAT_MAX_OUTPUT_TOKENS: String(MAX_OUTPUT),
        // The token budget binds, not the count.
        CHAT_MEMORY_RECENT_MESSAGES: '1000',
        TOOLS_FILE: file,
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    toolServer.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => llm.reset());

  const runCalls = () => llm.requests.filter((r) => !isSummaryCall(r));
  const isSummaryCall = (r: RecordedRequest) =>
    String(r.body.messages?.[0]?.content ?? '').startsWith('You maintain the running summary');

  test('a thread of long messages keeps answering: each prompt fits, holds exactly the newest that fit, and the report adds up', async () => {
    const threadId = `long-${Date.now()}`;
    const posted: string[] = [];
    for (let i = 0; i < 24; i++) {
      const content = long(i);
      posted.push(content);
      const { status, body } = await t.post({ threadId, content });
      expect(status).toBe(202);
      const events = await t.events.waitForTerminal(body.runId);
      const end = events.at(-1);
      expect(end?.type).toBe('agent.run.completed');

      const call = runCalls().at(-1) as RecordedRequest;
      // What the fake received fits what is left after the answer's share.
      expect(call.promptTokens).toBeLessThanOrEqual(CONTEXT - MAX_OUTPUT);
      const memory = end?.payload.memory;
      // The report adds up to the prompt the model received.
      expect(
        memory.systemTokens + memory.summaryTokens + memory.toolsTokens + memory.windowTokens,
      ).toBe(call.promptTokens);
      expect(memory.windowTokens).toBeLessThanOrEqual(memory.budgetTokens);
      // The window is the newest messages that fit: one more (the next older) would not.
      const sent = call.body.messages.filter((m: { role: string }) => m.role !== 'system');
      expect(sent.at(-1).content).toBe(content);
      const convo = posted.flatMap((c) => [c, `echo: ${c}`]).slice(0, -1);
      const next = convo[convo.length - sent.length - 1];
      if (next !== undefined) {
        expect(memory.windowTokens + messageTokens({ content: next })).toBeGreaterThan(
          memory.budgetTokens,
        );
      }
    }
    // By the end most of the thread lives in the summary only.
    const last = runCalls().at(-1) as RecordedRequest;
    expect(last.body.messages[0].content).toStartWith('Summary of the earlier conversation:');
  });

  test('a tool result that pushes the run over its budget mid-loop: the next step still fits', async () => {
    const threadId = `tool-${Date.now()}`;
    for (let i = 0; i < 6; i++) {
      const { body } = await t.post({ threadId, content: long(i) });
      await t.events.waitForTerminal(body.runId);
    }
    llm.reset();
    const { body } = await t.post({
      threadId,
      content: 'read it [[tool:fetch_report]]',
      tools: ['fetch_report'],
    });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
    const [first, second] = runCalls();
    // The second step carries the ~3 000-token result and still fits: memory gave way.
    expect(second?.promptTokens).toBeLessThanOrEqual(CONTEXT - MAX_OUTPUT);
    expect(second?.body.messages.at(-1).role).toBe('tool');
    const windowOf = (r: RecordedRequest | undefined) =>
      r?.body.messages.filter((m: { role: string }) => m.role === 'user' || m.role === 'assistant')
        .length ?? 0;
    expect(windowOf(second)).toBeLessThan(windowOf(first) + 1);
    expect(events.at(-1)?.payload.memory.toolsTokens).toBeGreaterThan(0);
    // The run view has the same report.
    const view = (await t.get(`/api/chat/runs/${body.runId}`)).body;
    expect(view.memory).toEqual(events.at(-1)?.payload.memory);
  });

  test.each(['openai', 'llamacpp'] as const)(
    'the model refuses for context length once (%s wording): the run retries with half the window and completes',
    async (wording) => {
      // About 5 000 tokens of history: it fits the budget, but not half of it.
      const threadId = `overflow-${wording}-${Date.now()}`;
      for (let i = 0; i < 8; i++) {
        const { body } = await t.post({ threadId, content: long(i) });
        await t.events.waitForTerminal(body.runId);
      }
      llm.reset();
      llm.enqueue({ kind: 'context-overflow', wording });
      const { body } = await t.post({ threadId, content: 'one more' });
      const events = await t.events.waitForTerminal(body.runId);
      expect(events.at(-1)?.type).toBe('agent.run.completed');
      expect(events.at(-1)?.payload.attempts).toBe(1);
      const [refused, retried] = runCalls();
      expect(retried?.promptTokens).toBeLessThan(refused?.promptTokens as number);
    },
  );

  test('refused twice: the run fails context_overflow', async () => {
    llm.enqueue({ kind: 'context-overflow', wording: 'vllm' }, { kind: 'context-overflow' });
    const { body } = await t.post({ content: 'too much, twice' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'agent.run.failed',
      payload: { error: { code: 'context_overflow' }, attempts: 1 },
    });
  });
});
