import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Run } from '../../db/types';
import type { ChatRequest, Llm } from '../../src/llm/llm';
import { createLogger } from '../../src/logger';
import { promptBudget } from '../../src/memory/budget';
import { buildRunPrompt } from '../../src/memory/memory';
import { summaryContent } from '../../src/memory/summary';
import { messageTokens } from '../../src/memory/tokens';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

// A small model (2048 tokens, 256 for the answer): ingress refuses what its prompt can never
// hold, and memory builds prompts from a real store, messages posted over HTTP. No worker: the
// runs stay queued and buildRunPrompt is called as the run loop calls it.

const SYSTEM = 'You are terse.';

describe.skipIf(!redisTestsEnabled())('memory that fits a small model', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      worker: false,
      env: {
        CHAT_CONTEXT_TOKENS: '2048',
        CHAT_MAX_OUTPUT_TOKENS: '256',
        CHAT_SUMMARY_MAX_TOKENS: '64',
        CHAT_SYSTEM_PROMPT: SYSTEM,
        CHAT_MODEL_CONTEXT_TOKENS: 'roomy=16000',
        CHAT_MAX_MESSAGE_CHARS: '100000',
      },
    });
  });
  afterAll(() => t.close());

  test('a message over the prompt budget is a 400 message_too_long; nothing is stored', async () => {
    const budget = promptBudget(t.config, 'gpt-4o-mini');
    expect(budget).toBe(2048 - 256 - messageTokens({ content: SYSTEM }) - 103);
    const before = await rowCounts(t.sql);
    const content = 'word '.repeat(budget);
    const { status, body } = await t.post({ content });
    expect(status).toBe(400);
    expect(body).toEqual({
      error: {
        code: 'message_too_long',
        message: expect.stringContaining(`at most ${budget}`),
        details: { tokens: messageTokens({ content: content.trim() }), budget },
      },
    });
    expect(await rowCounts(t.sql)).toEqual(before);

    // The same message to a model with a larger window is taken.
    const roomy = await t.post({ content, model: 'roomy' });
    expect(roomy.status).toBe(202);
  });

  test('a message exactly at the budget is taken', async () => {
    const budget = promptBudget(t.config, 'gpt-4o-mini');
    // "a" repeated with spaces is one token a word: find the longest that fits.
    let words = budget - 4;
    while (messageTokens({ content: 'a '.repeat(words).trim() }) > budget) words--;
    const content = 'a '.repeat(words).trim();
    expect(messageTokens({ content })).toBeLessThanOrEqual(budget);
    expect((await t.post({ content })).status).toBe(202);
  });

  test('the window of a long thread fits, the rest folded into the summary', async () => {
    const threadId = `budget-${Date.now()}`;
    const runs: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { status, body } = await t.post({
        content: `question ${i}: ${'x '.repeat(300)}`,
        threadId,
      });
      expect(status).toBe(202);
      runs.push(body.runId);
    }
    const run = (await t.deps.db.getRun(runs.at(-1) as string)) as Run;
    const requests: ChatRequest[] = [];
    const llm: Llm = {
      async chat(request) {
        requests.push(request);
        return {
          content: 'They asked six long questions.',
          toolCalls: [],
          usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
        };
      },
    };
    const deps = { db: t.deps.db, llm, config: t.config, logger: createLogger('silent') };
    const built = await buildRunPrompt(deps, run, undefined, { tools: [], stepTokens: 0 });

    // Each question is about 310 tokens: the budget holds a few, the rest went to the summary.
    const { report, messages } = built;
    expect(report.contextTokens).toBe(2048);
    expect(report.windowTokens).toBeLessThanOrEqual(report.budgetTokens);
    expect(report.windowMessages).toBeGreaterThanOrEqual(1);
    expect(report.windowMessages).toBeLessThan(6);
    expect(messages.at(-1)?.content).toStartWith('question 5:');
    expect(messages[1]?.content).toBe(summaryContent('They asked six long questions.'));
    expect(requests).toHaveLength(1);
    expect(requests[0]?.maxTokens).toBe(64);
    expect(report.summarisedMessages).toBe(6 - report.windowMessages);
    const sent =
      report.systemTokens + report.summaryTokens + report.toolsTokens + report.windowTokens;
    expect(sent).toBeLessThanOrEqual(2048 - 256);

    // The summary is stored: the next call folds nothing more and sends the same window.
    const again = await buildRunPrompt(deps, run, undefined, { tools: [], stepTokens: 0 });
    expect(requests).toHaveLength(1);
    expect(again.messages).toEqual(messages);

    // Halved (the overflow retry): a smaller window, the slots that left it folded in.
    const half = await buildRunPrompt(deps, run, undefined, {
      tools: [],
      stepTokens: 0,
      shrink: 0.5,
    });
    expect(half.report.budgetTokens).toBeLessThan(report.budgetTokens);
    expect(half.report.windowMessages).toBeLessThanOrEqual(report.windowMessages);
    expect(half.messages.at(-1)?.content).toStartWith('question 5:');
  });
});
