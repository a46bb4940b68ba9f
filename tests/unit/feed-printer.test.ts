import { describe, expect, test } from 'bun:test';
import { createFeedPrinter, type FeedData } from '../../tools/feed-printer';

const ids = { runId: 'run_a', threadId: 'thr_a' };
const event = (payload: Record<string, unknown>, runId = ids.runId): FeedData => ({
  ...ids,
  runId,
  payload,
});
const runView = (over: Record<string, unknown>) => ({
  id: 'run_a',
  threadId: 'thr_a',
  status: 'completed',
  attempts: 1,
  error: null,
  reply: null,
  cancel: null,
  ...over,
});

function print(feed: 'run' | 'thread', events: [string, FeedData][]): string[] {
  let out = '';
  const printer = createFeedPrinter(feed, (text) => {
    out += text;
  });
  for (const [type, data] of events) printer.show(type, data);
  printer.end();
  return out.trimEnd().split('\n');
}

describe('the watch CLI’s printer', () => {
  test('a cancelled run: who asked, the reason and the attempts spent', () => {
    expect(
      print('run', [
        ['agent.run.cancelled', event({ reason: 'changed my mind', by: 'client', attempts: 1 })],
        ['agent.run.cancelled', event({ reason: null, by: 'interrupt', attempts: 0 }, 'run_b')],
      ]),
    ).toEqual([
      '• agent.run.cancelled run_a by client ("changed my mind"), after 1 attempt',
      '• agent.run.cancelled run_b by interrupt, after 0 attempts',
      '(feed ended)',
    ]);
  });

  test("a run feed's reset says the run's status, what ended it and its reply", () => {
    const reset = (run: Record<string, unknown>) =>
      ['agent.feed.reset', event({ run: runView(run) })] as [string, FeedData];
    expect(
      print('run', [
        reset({ status: 'completed', attempts: 2, reply: { content: 'the answer' } }),
        reset({ status: 'failed', error: { code: 'llm_unauthorized', message: '401' } }),
        reset({ status: 'cancelled', cancel: { by: 'client', reason: 'stop' } }),
      ]),
    ).toEqual([
      '• agent.feed.reset: earlier events are gone; the run now: run_a completed, 2 attempts, reply "the answer"',
      '• agent.feed.reset: earlier events are gone; the run now: run_a failed, 1 attempt, llm_unauthorized: 401',
      '• agent.feed.reset: earlier events are gone; the run now: run_a cancelled, 1 attempt, cancel by client ("stop")',
      '(feed ended)',
    ]);
  });

  test("a thread feed's reset lists the thread's runs", () => {
    const lines = print('thread', [
      [
        'agent.feed.reset',
        {
          runId: '',
          threadId: 'thr_a',
          payload: {
            thread: { id: 'thr_a', messageCount: 3 },
            runs: [
              runView({ id: 'run_b', status: 'running', attempts: 1 }),
              runView({ id: 'run_a', reply: { content: 'first\nreply' } }),
            ],
          },
        },
      ],
    ]);
    expect(lines).toEqual([
      '• agent.feed.reset: earlier events are gone; thread thr_a now: 3 messages, 2 latest runs (newest first):',
      '    run_b running, 1 attempt',
      '    run_a completed, 1 attempt, reply "first reply"',
      '(feed ended)',
    ]);
  });

  test("a thread feed prints each completed run's reply; a run feed only what it did not stream", () => {
    const completed = event({
      content: 'echo: hi',
      attempts: 1,
      usage: { totalTokens: 3 },
      durationMs: 5,
    });
    expect(print('thread', [['agent.run.completed', completed]])).toEqual([
      '• agent.run.completed run_a 1 attempt, {"totalTokens":3}, 5 ms',
      '  reply: echo: hi',
      '(feed ended)',
    ]);
    expect(
      print('run', [
        ['agent.run.delta', event({ attempt: 1, index: 0, text: 'echo: ' })],
        ['agent.run.delta', event({ attempt: 1, index: 1, text: 'hi' })],
        ['agent.run.completed', completed],
      ]),
    ).toEqual([
      '  reply (attempt 1):',
      '  echo: hi',
      '• agent.run.completed run_a 1 attempt, {"totalTokens":3}, 5 ms',
      '(feed ended)',
    ]);
    // After a reset mid-reply, the deltas shown are only the end of it: the whole reply follows.
    expect(
      print('run', [
        ['agent.run.delta', event({ attempt: 1, index: 5, text: 'hi' })],
        ['agent.run.completed', completed],
      ]).slice(2),
    ).toEqual([
      '• agent.run.completed run_a 1 attempt, {"totalTokens":3}, 5 ms',
      '  reply: echo: hi',
      '(feed ended)',
    ]);
  });

  test('other events print their payload', () => {
    expect(print('thread', [['agent.thread.titled', event({ title: 'Greetings' })]])).toEqual([
      '• agent.thread.titled run_a {"title":"Greetings"}',
      '(feed ended)',
    ]);
  });

  test('a completed run with a budget report prints it on one line', () => {
    const memory = {
      contextTokens: 8192,
      budgetTokens: 6000,
      systemTokens: 20,
      summaryTokens: 300,
      toolsTokens: 0,
      windowTokens: 5800,
      windowMessages: 7,
      summarisedMessages: 190,
    };
    const lines = print('thread', [
      [
        'agent.run.completed',
        event({ attempts: 1, usage: {}, durationMs: 5, content: 'ok', memory }),
      ],
    ]);
    expect(lines.at(-2)).toBe(
      '  memory: 6120 of 8192 tokens sent — 7 messages (5800 of a 6000-token window), summary 300 (covers 190 messages), system 20, tools 0',
    );
  });
});
