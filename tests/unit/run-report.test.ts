import { describe, expect, test } from 'bun:test';
import { createRunReport, jobCallsWriter, previewText } from '../../jobs/run-report';
import { LlmError } from '../../src/llm/llm';
import { createLogger } from '../../src/logger';

/** A job's two writes, as BullMQ's Job has them: each call recorded, its outcome chosen. */
function fakeJob(outcome: () => Promise<unknown> = () => Promise.resolve(1)) {
  const lines: string[] = [];
  const progress: unknown[] = [];
  return {
    lines,
    progress,
    job: {
      log: (line: string) => {
        lines.push(line);
        return outcome() as Promise<number>;
      },
      updateProgress: (value: unknown) => {
        progress.push(structuredClone(value));
        return outcome() as Promise<void>;
      },
    },
  };
}

const memory = {
  contextTokens: 128000,
  budgetTokens: 115000,
  systemTokens: 12,
  summaryTokens: 40,
  toolsTokens: 30,
  windowTokens: 300,
  windowMessages: 4,
  summarisedMessages: 9,
};
const options = { maxSteps: 10, logger: createLogger('silent') };

describe('the run report', () => {
  test('one line per attempt, model call, tool call and ending', async () => {
    const { job, lines } = fakeJob();
    const report = createRunReport(jobCallsWriter(job), options);
    report.attemptStarted(2, 'gpt-4o-mini', false);
    report.stepStarted(1);
    report.modelAnswered({
      step: 1,
      durationMs: 812.4,
      memory,
      usage: { promptTokens: 400, completionTokens: 20, totalTokens: 420 },
      toolCalls: ['lookup'],
      replyChars: 0,
      shrunk: false,
    });
    report.toolFinished({
      step: 1,
      name: 'lookup',
      source: 'http',
      isError: true,
      output: 'HTTP 500:\n  database\ton fire',
      durationMs: 1534,
      toolCalls: 1,
    });
    report.modelFailed({
      step: 2,
      durationMs: 3,
      error: new LlmError('final', 'llm_unauthorized', 'the model server answered 401'),
      cancelled: false,
      retrying: false,
    });
    await report.close();
    expect(lines).toEqual([
      'attempt 2 · model gpt-4o-mini',
      'step 1 · gpt-4o-mini answered in 812 ms: 1 tool call (lookup) · prompt 400 tokens of a ' +
        '128000-token context: window 4 messages (300 tokens), summary 40 tokens over 9 messages, ' +
        'system 12, tools 30 · completion 20 tokens',
      'step 1 · tool lookup (http) failed in 1.53 s: HTTP 500: database on fire',
      'step 2 · gpt-4o-mini failed after 3 ms: llm_unauthorized: the model server answered 401',
    ]);
  });

  test('progress is batched: a thousand streamed pieces make one write, the last state', async () => {
    const { job, progress } = fakeJob();
    const report = createRunReport(jobCallsWriter(job), options);
    report.attemptStarted(1, 'm', false);
    report.stepStarted(3);
    for (let i = 0; i < 1000; i++) report.streamed();
    await report.close();
    // One write unless this machine stalled for a whole PROGRESS_MS in the loop above.
    expect(progress.length).toBeLessThanOrEqual(2);
    expect(progress.at(-1)).toEqual({
      attempt: 1,
      step: 3,
      maxSteps: 10,
      toolCalls: 0,
      streamedTokens: 1000,
    });
  });

  test('a Redis that refuses or never answers neither throws nor holds the end for long', async () => {
    const refused = fakeJob(() => Promise.reject(new Error('Connection is closed.')));
    const report = createRunReport(jobCallsWriter(refused.job), options);
    report.attemptStarted(1, 'm', false);
    report.streamed();
    report.line('completed');
    await report.close();
    expect(refused.lines).toHaveLength(2);

    const hung = fakeJob(() => new Promise(() => {}));
    const stuck = createRunReport(jobCallsWriter(hung.job), options);
    stuck.line('attempt 1');
    const started = performance.now();
    await stuck.close();
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5000);
  });

  test('previewText cuts after max characters, never through a surrogate pair', () => {
    expect(previewText('short', 200)).toBe('short');
    expect(previewText('x'.repeat(300), 200)).toBe(`${'x'.repeat(200)}…`);
    const emoji = `${'a'.repeat(199)}😀tail`;
    expect(previewText(emoji, 200)).toBe(`${'a'.repeat(199)}…`);
    expect(previewText(emoji, 200).isWellFormed()).toBe(true);
  });
});
