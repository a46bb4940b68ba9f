import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, type RecordedRequest, startFakeLlm } from '../../harness/fake-llm';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const RECENT = 4;

describe.skipIf(!redisTestsEnabled())('memory: rolling summary + the last N messages', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let summaries = 0;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    llm.setDefault((req) =>
      req.body.model === 'summarizer'
        ? { kind: 'reply', content: `summary #${++summaries}` }
        : { kind: 'reply', content: `answer to ${req.body.messages.at(-1).content}` },
    );
    t = await startTestApp({
      env: {
        OPENAI_BASE_URL: llm.url,
        CHAT_MEMORY_RECENT_MESSAGES: String(RECENT),
        CHAT_SUMMARY_MODEL: 'summarizer',
        CHAT_SYSTEM_PROMPT: 'You are terse.',
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('over 12 messages the prompt holds exactly the summary and the last N messages', async () => {
    const threadId = `memory-${Date.now()}`;
    for (let i = 1; i <= 6; i++) {
      const { body } = await t.post({ content: `question ${i}`, threadId });
      const events = await t.events.waitForTerminal(body.runId);
      expect(events.at(-1)?.type).toBe('agent.run.completed');
    }
    // Conversation so far: q1 a1 q2 a2 … q6 a6 (12 messages).
    const { body: page } = await t.get(`/api/chat/threads/${threadId}/messages`);
    const convo: { id: string; content: string; role: string }[] = page.messages;
    expect(convo).toHaveLength(12);

    const isSummary = (r: RecordedRequest) => r.body.model === 'summarizer';
    const runCalls = llm.requests.filter((r) => !isSummary(r));
    const summaryCalls = llm.requests.filter(isSummary);
    expect(runCalls).toHaveLength(6);

    // Run k's own message sits at index 2(k-1); its window is the RECENT messages ending there.
    let summaryText: string | null = null;
    let covered = -1; // index of the last message the summary covers
    let summaryIndex = 0;
    for (let k = 1; k <= 6; k++) {
      const own = 2 * (k - 1);
      const windowStart = Math.max(0, own - RECENT + 1);
      const expected: { role: string; content: string }[] = [
        { role: 'system', content: 'You are terse.' },
      ];
      if (covered + 1 < windowStart) {
        // A summary call folds exactly the messages that left the window since the last one.
        const call = summaryCalls[summaryIndex++];
        expect(call?.body.messages[0].role).toBe('system');
        const folded = convo.slice(covered + 1, windowStart);
        const transcript = folded.map((m) => `${m.role}: ${m.content}`).join('\n\n');
        expect(call?.body.messages[1]).toEqual({
          role: 'user',
          content: `Previous summary:\n${summaryText ?? '(none)'}\n\nNew messages:\n${transcript}`,
        });
        summaryText = `summary #${summaryIndex}`;
        covered = windowStart - 1;
      }
      if (summaryText) {
        expected.push({ role: 'system', content: expect.stringContaining(summaryText) });
      }
      for (const m of convo.slice(windowStart, own + 1)) {
        expected.push({ role: m.role, content: m.content });
      }
      expect(runCalls[k - 1]?.body.messages).toEqual(expected);
    }
    expect(summaryCalls).toHaveLength(summaryIndex);
    expect(summaryIndex).toBeGreaterThanOrEqual(2);

    const thread = await t.get(`/api/chat/threads/${threadId}`);
    expect(thread.body).toMatchObject({
      messageCount: 12,
      summary: summaryText,
      summaryThroughMessageId: convo[covered]?.id,
    });
  });

  test('a failed summary: the run goes on with those messages verbatim, retried next run', async () => {
    const threadId = `memory-fail-${Date.now()}`;
    for (let i = 1; i <= 2; i++) {
      const { body } = await t.post({ content: `q${i}`, threadId });
      await t.events.waitForTerminal(body.runId);
    }
    // q1 a1 q2 a2 + q3: the window (4) leaves q1 out, so q3's run summarises q1 first.
    const before = llm.requests.length;
    llm.enqueue({ kind: 'status', status: 500 }); // that summary call fails
    const { body } = await t.post({ content: 'q3', threadId });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');
    const calls = llm.requests.slice(before);
    expect(calls.map((c) => c.body.model)).toEqual(['summarizer', 'gpt-4o-mini']);
    expect(calls[1]?.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'You are terse.',
      'q1',
      'answer to q1',
      'q2',
      'answer to q2',
      'q3',
    ]);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.summary).toBeNull();

    // Next run: the summary is tried again and now covers everything before the window.
    const next = await t.post({ content: 'q4', threadId });
    await t.events.waitForTerminal(next.body.runId);
    const retried = llm.requests.slice(before + 2);
    expect(retried.map((c) => c.body.model)).toEqual(['summarizer', 'gpt-4o-mini']);
    expect(retried[0]?.body.messages[1].content).toEndWith(
      'New messages:\nuser: q1\n\nassistant: answer to q1\n\nuser: q2',
    );
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.summary).toMatch(/^summary #/);
  });
});
