import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { waitForJobState } from '../../harness/wait';
import { KEEP_LOG_LINES } from '../../jobs/catalog';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { writeHttpToolsFile } from '../support/tools-file';

const colorTool = {
  name: 'pick_color',
  description: 'Asks the user to pick a color',
  parameters: { type: 'object', properties: { hint: { type: 'string' } } },
};

/**
 * What Bull Board shows of a run's job, read the way the board reads it (the queue's job, its
 * logs): every attempt's story in the log, the progress, and the return value.
 */
describe.skipIf(!redisTestsEnabled())('a run job tells its story', () => {
  let llm: FakeLlm;
  let http: HttpToolServer;
  let t: TestApp;

  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    http = startHttpToolServer();
    const file = writeHttpToolsFile(http.url, { lookup: '/echo', broken: '/fail' });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: file } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
    http.stop();
  });
  beforeEach(() => llm.reset());

  const finished = async (runId: string, state: 'completed' | 'failed') => {
    await t.events.waitForTerminal(runId);
    expect(await waitForJobState(t.deps.queue, runId, state)).toBe(state);
    const job = await t.deps.queue.getJob(runId);
    const { logs } = await t.deps.queue.getJobLogs(runId);
    return { job, logs };
  };

  test('tool calls: a line per attempt, model call (prompt, window, duration), tool call and end; progress; the reply', async () => {
    const { body } = await t.post({
      content: 'both [[tool:lookup {"q":"a"}]] [[tool:broken {"q":"b"}]]',
      tools: ['lookup', 'broken'],
    });
    const { job, logs } = await finished(body.runId, 'completed');
    expect(logs).toHaveLength(6);
    expect(logs[0]).toBe('attempt 1 · model gpt-4o-mini');
    expect(logs[1]).toMatch(
      /^step 1 · gpt-4o-mini answered in \d+ ms: 2 tool calls \(lookup, broken\) · prompt \d+ tokens of a 128000-token context: window 1 message \(\d+ tokens\), summary 0 tokens over 0 messages, system 0, tools \d+ · completion \d+ tokens$/,
    );
    // The two calls run at once: their lines come in the order they finish.
    expect(logs.slice(2, 4).sort()).toEqual([
      expect.stringMatching(
        /^step 1 · tool broken \(http\) failed in \d+ ms: HTTP 500: database on fire !+…$/,
      ),
      expect.stringMatching(/^step 1 · tool lookup \(http\) answered in \d+ ms$/),
    ]);
    expect(logs[4]).toMatch(/^step 2 · gpt-4o-mini answered in \d+ ms: a reply of \d+ chars/);
    const run = (await t.get(`/api/chat/runs/${body.runId}`)).body;
    expect(logs[5]).toBe(
      `completed · reply ${run.reply.id} (${run.reply.content.length} chars) · 2 steps, 2 tool calls · ` +
        `${run.usage.promptTokens} prompt + ${run.usage.completionTokens} completion tokens`,
    );
    const { streamedTokens, ...progress } = (job?.progress ?? {}) as Record<string, number>;
    expect(progress).toEqual({ attempt: 1, step: 2, maxSteps: 10, toolCalls: 2 });
    expect(streamedTokens).toBeGreaterThan(0);
    const preview = `${run.reply.content.slice(0, 200)}…`;
    expect(run.reply.content.length).toBeGreaterThan(200);
    expect(job?.returnvalue).toEqual({
      status: 'completed',
      replyId: run.reply.id,
      replyPreview: preview,
    });
    expect(job?.opts.keepLogs).toBe(KEEP_LOG_LINES);
  });

  test('a short reply is its own preview', async () => {
    const { body } = await t.post({ content: 'hello' });
    const { job } = await finished(body.runId, 'completed');
    expect(job?.returnvalue).toMatchObject({ status: 'completed', replyPreview: 'echo: hello' });
  });

  test('a retried attempt and a final failure: each says its error code', async () => {
    llm.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'fail me' });
    const { logs } = await finished(body.runId, 'failed');
    expect(logs).toEqual([
      'attempt 1 · model gpt-4o-mini',
      expect.stringMatching(/^step 1 · gpt-4o-mini failed after \d+ ms: llm_server_error: /),
      expect.stringMatching(/^attempt 1 failed: llm_server_error: .*; BullMQ retries it$/),
      'attempt 2 · model gpt-4o-mini',
      expect.stringMatching(/^step 1 · gpt-4o-mini failed after \d+ ms: llm_unauthorized: /),
      expect.stringMatching(/^failed: llm_unauthorized: /),
    ]);
  });

  test('a pause for the client, and the resumed attempt', async () => {
    const { body } = await t.post({
      content: 'choose [[tool:pick_color {"hint":"warm"}]]',
      clientTools: [colorTool],
    });
    await t.events.waitFor(
      (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.requires_action'),
      'the run to wait for its client',
    );
    const run = (await t.get(`/api/chat/runs/${body.runId}`)).body;
    const [call] = run.pendingAction.toolCalls;
    const answered = await t.request(`/api/chat/runs/${body.runId}/tool-outputs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outputs: [{ toolCallId: call.toolCallId, output: 'red' }] }),
    });
    expect(answered.status).toBe(202);
    const { logs } = await finished(body.runId, 'completed');
    expect(logs).toEqual([
      'attempt 1 · model gpt-4o-mini',
      expect.stringMatching(/^step 1 · gpt-4o-mini answered in \d+ ms: 1 tool call \(pick_color\)/),
      expect.stringMatching(
        /^waits for the client \(tool outputs: pick_color\) until \S+; no worker slot is held$/,
      ),
      'attempt 1, resumed: the client answered · model gpt-4o-mini',
      expect.stringMatching(/^step 2 · gpt-4o-mini answered in \d+ ms: a reply of/),
      expect.stringMatching(/^completed · reply msg_/),
    ]);
  });
});
