import { describe, expect, test } from 'bun:test';
import type { Message, OutboxRow, Run, Thread } from '../../db/types';
import type { ChatRequest, ChatResult } from '../../src/llm/llm';
import { LlmError } from '../../src/llm/llm';
import {
  buildTitleRequest,
  cleanTitle,
  TITLE_MAX_CHARS,
  type TitleDeps,
  titleThread,
} from '../../src/threads/titles';
import { captureLogs } from '../support/app';

describe('cleanTitle', () => {
  test('trims, collapses whitespace, strips quotes, a Title: prefix and a trailing period', () => {
    expect(cleanTitle('  Planning   a\ttrip to  Kyoto.  ')).toBe('Planning a trip to Kyoto');
    expect(cleanTitle('"Planning a trip"')).toBe('Planning a trip');
    expect(cleanTitle('“Planning a trip.”')).toBe('Planning a trip');
    expect(cleanTitle('\'"Nested quotes"\'')).toBe('Nested quotes');
    expect(cleanTitle('**Bold title**')).toBe('Bold title');
    expect(cleanTitle('Title: "Soup recipes"')).toBe('Soup recipes');
    expect(cleanTitle('\n\nFirst line\nsecond line')).toBe('First line');
  });

  test('keeps an ellipsis, a lone quote and inner punctuation', () => {
    expect(cleanTitle('Waiting for results...')).toBe('Waiting for results...');
    expect(cleanTitle('"Unbalanced')).toBe('"Unbalanced');
    expect(cleanTitle('Node.js vs. Bun')).toBe('Node.js vs. Bun');
  });

  test('empty or only quotes and dots: no title', () => {
    expect(cleanTitle('')).toBe('');
    expect(cleanTitle('   \n  ')).toBe('');
    expect(cleanTitle('""')).toBe('');
    expect(cleanTitle('.')).toBe('');
  });

  test('at most 80 characters, cut at a word boundary', () => {
    const long = `${'word '.repeat(30)}end`;
    const title = cleanTitle(long);
    expect(title.length).toBeLessThanOrEqual(TITLE_MAX_CHARS);
    expect(title.endsWith('word')).toBe(true);
    expect(long.startsWith(title)).toBe(true);
    expect(cleanTitle(`${'a'.repeat(78)} b`)).toBe(`${'a'.repeat(78)} b`);
    expect(cleanTitle(`${'a'.repeat(79)} b`)).toBe('a'.repeat(79));
    expect(cleanTitle(`${'a'.repeat(80)} b`)).toBe('a'.repeat(80));
  });

  test('one long word is cut at 80, and never splits a surrogate pair', () => {
    expect(cleanTitle('x'.repeat(200))).toBe('x'.repeat(80));
    const emoji = cleanTitle('😀'.repeat(100));
    expect(Array.from(emoji)).toHaveLength(80);
    expect(emoji).toBe('😀'.repeat(80));
  });
});

describe('buildTitleRequest', () => {
  test('a short instruction as system, the two texts (their openings) as user', () => {
    const messages = buildTitleRequest({ question: 'q'.repeat(5000), answer: 'short answer' });
    expect(messages).toHaveLength(2);
    expect(messages[0]?.role).toBe('system');
    expect(messages[1]?.role).toBe('user');
    const user = messages[1]?.content ?? '';
    expect(user.length).toBeLessThan(2100);
    expect(user.endsWith('Assistant: short answer')).toBe(true);
  });
});

const run = {
  id: 'run_1',
  threadId: 'thr_1',
  seq: 2,
  userMessageId: 'msg_2',
} as Run;
const message = (id: string, content: string, seq: number) =>
  ({ id, role: 'user', content, seq, position: 0 }) as Message;

/** A store and model of plain functions: titleThread's few calls, recorded. */
function fakeDeps(opts: {
  titleModel?: string | null;
  title?: string | null;
  answer?: () => Promise<ChatResult>;
  saved?: boolean;
}) {
  const calls = { chat: [] as ChatRequest[], saved: [] as unknown[], delivered: [] as unknown[] };
  const deps: TitleDeps = {
    config: {
      chat: { titleModel: opts.titleModel === undefined ? 'title-model' : opts.titleModel },
    } as TitleDeps['config'],
    db: {
      getThread: async () => ({ id: 'thr_1', title: opts.title ?? null }) as Thread,
      getRunWithReply: async () => ({
        run,
        reply: { ...message('msg_3', 'Here is the plan.', 3), role: 'assistant' },
      }),
      getMessage: async () => message('msg_2', 'the run’s own message', 2),
      listMessagesBetween: async () => [message('msg_0', 'Plan my trip to Kyoto', 0)],
      saveTitle: async (input) => {
        calls.saved.push(input);
        return opts.saved === false ? null : { row: { id: 7 } as OutboxRow };
      },
    },
    llm: {
      chat: async (request) => {
        calls.chat.push(request);
        return opts.answer
          ? opts.answer()
          : {
              content: '"Kyoto trip plan."',
              toolCalls: [],
              usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
            };
      },
    },
    publisher: {
      deliver: async (row) => {
        calls.delivered.push(row);
        return true;
      },
    },
  };
  return { deps, calls };
}

describe('titleThread', () => {
  test('asks the title model about the first message and the reply, saves and delivers', async () => {
    const { deps, calls } = fakeDeps({});
    const { logger } = captureLogs();
    await titleThread(deps, run, logger);
    expect(calls.chat).toHaveLength(1);
    expect(calls.chat[0]?.model).toBe('title-model');
    expect(calls.chat[0]?.tools).toBeUndefined();
    expect(calls.chat[0]?.onDelta).toBeUndefined();
    expect(calls.chat[0]?.messages[1]?.content).toBe(
      'User: Plan my trip to Kyoto\n\nAssistant: Here is the plan.',
    );
    expect(calls.saved).toEqual([
      expect.objectContaining({ threadId: 'thr_1', title: 'Kyoto trip plan', source: 'model' }),
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: the recorded input
    const { event } = calls.saved[0] as any;
    expect(event).toMatchObject({ type: 'agent.thread.titled', runId: 'run_1', threadId: 'thr_1' });
    expect(JSON.parse(event.payload)).toEqual({ title: 'Kyoto trip plan' });
    expect(calls.delivered).toEqual([{ id: 7 }]);
  });

  test('no title model, or a thread titled already: no call', async () => {
    for (const opts of [{ titleModel: null }, { title: 'Mine' }]) {
      const { deps, calls } = fakeDeps(opts);
      await titleThread(deps, run, captureLogs().logger);
      expect(calls.chat).toHaveLength(0);
      expect(calls.saved).toHaveLength(0);
    }
  });

  test('a model error is logged at warn and saves nothing; it never throws', async () => {
    const { deps, calls } = fakeDeps({
      answer: () => Promise.reject(new LlmError('retryable', 'llm_server_error', 'HTTP 500')),
    });
    const { logger, lines } = captureLogs();
    await titleThread(deps, run, logger.child({ runId: run.id, threadId: run.threadId }));
    expect(calls.saved).toHaveLength(0);
    const warn = lines.map((line) => JSON.parse(line)).find((entry) => entry.level === 40);
    expect(warn).toMatchObject({ runId: 'run_1', threadId: 'thr_1' });
  });

  test('an empty answer saves nothing; nothing saved (titled meanwhile) delivers nothing', async () => {
    const empty = fakeDeps({
      answer: async () => ({
        content: '  "" ',
        toolCalls: [],
        usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
      }),
    });
    await titleThread(empty.deps, run, captureLogs().logger);
    expect(empty.calls.saved).toHaveLength(0);
    const raced = fakeDeps({ saved: false });
    await titleThread(raced.deps, run, captureLogs().logger);
    expect(raced.calls.saved).toHaveLength(1);
    expect(raced.calls.delivered).toHaveLength(0);
  });

  test("the thread's first run: its own message is the first", async () => {
    const { deps, calls } = fakeDeps({});
    await titleThread(deps, { ...run, seq: 0 }, captureLogs().logger);
    expect(calls.chat[0]?.messages[1]?.content).toStartWith('User: the run’s own message');
  });
});
