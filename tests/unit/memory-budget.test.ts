import { describe, expect, test } from 'bun:test';
import type { Store } from '../../db/store';
import type { Message, Run } from '../../db/types';
import { loadConfig } from '../../src/config';
import type { ChatRequest, Llm, ToolDefinition } from '../../src/llm/llm';
import { createLogger } from '../../src/logger';
import {
  marginTokens,
  promptBudget,
  systemPromptTokens,
  windowBudget,
} from '../../src/memory/budget';
import { buildRunPrompt } from '../../src/memory/memory';
import {
  capSummary,
  summaryContent,
  summaryReserveTokens,
  summaryTokens,
} from '../../src/memory/summary';
import { messageTokens, textTokens, toolDefinitionTokens } from '../../src/memory/tokens';

// The budget and the window, against an in-memory store and model: every message carries a round
// number of tokens (`messages.tokens`), so the arithmetic can be checked to the token.

const SYSTEM = 'Be brief.';
const config = (env: Record<string, string> = {}) =>
  loadConfig({
    DATABASE_URL: 'file::memory:',
    CHAT_CONTEXT_TOKENS: '10000',
    CHAT_MAX_OUTPUT_TOKENS: '1000',
    CHAT_SUMMARY_MAX_TOKENS: '64',
    CHAT_MEMORY_RECENT_MESSAGES: '50',
    CHAT_SYSTEM_PROMPT: SYSTEM,
    ...env,
  });

const weather: ToolDefinition = {
  name: 'weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } } },
};

type Row = Pick<
  Message,
  | 'id'
  | 'seq'
  | 'position'
  | 'role'
  | 'content'
  | 'toolCalls'
  | 'toolCallId'
  | 'name'
  | 'isError'
  | 'tokens'
>;

/** Turn `turn`'s message at `position`: user messages take every other slot, as ingress has it. */
const row = (turn: number, position: number, tokens: number | null = 100): Row => ({
  id: `msg_${turn}_${position}`,
  seq: 2 * turn,
  position,
  role: position === 0 ? 'user' : 'assistant',
  content: `m${turn}.${position}`,
  toolCalls: null,
  toolCallId: null,
  name: null,
  isError: null,
  tokens,
});

/** `turns` slots of a user message and a reply (100 tokens each), then the run's message. */
function conversation(turns: number): Row[] {
  const rows: Row[] = [];
  for (let turn = 0; turn < turns; turn++) rows.push(row(turn, 0), row(turn, 1));
  rows.push(row(turns, 0));
  return rows;
}

interface Memory {
  rows: Row[];
  summary: string | null;
  summaryTokens: number;
  summaryThroughSeq: number | null;
  saved: { text: string; throughSeq: number; tokens: number }[];
}

function fakeStore(memory: Memory): Store {
  const store = {
    async getThreadMemory(_threadId: string, throughSeq: number, count: number) {
      const upTo = memory.rows.filter((m) => m.seq <= throughSeq);
      return {
        summary: memory.summary,
        summaryTokens: memory.summaryTokens,
        summaryThroughSeq: memory.summaryThroughSeq,
        recent: upTo.slice(Math.max(upTo.length - count, 0)),
      };
    },
    async getMessage(id: string) {
      return memory.rows.find((m) => m.id === id);
    },
    async listMessagesBetween(_threadId: string, afterSeq: number, beforeSeq: number) {
      return memory.rows.filter((m) => m.seq > afterSeq && m.seq < beforeSeq);
    },
    async saveSummary(
      _threadId: string,
      summary: { text: string; throughMessageId: string; throughSeq: number; tokens: number },
    ) {
      memory.summary = summary.text;
      memory.summaryTokens = summary.tokens;
      memory.summaryThroughSeq = summary.throughSeq;
      memory.saved.push(summary);
    },
  };
  return store as unknown as Store;
}

function fakeLlm(answer: (request: ChatRequest) => string) {
  const requests: ChatRequest[] = [];
  const llm: Llm = {
    async chat(request) {
      requests.push(request);
      return {
        content: answer(request),
        toolCalls: [],
        usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      };
    },
  };
  return { llm, requests };
}

/** The run answering the last row of `rows` (its user message). */
function runOf(rows: Row[]): Run {
  const own = rows.at(-1) as Row;
  return { id: 'run_1', threadId: 'thr_1', seq: own.seq, userMessageId: own.id, model: 'm' } as Run;
}

async function build(
  memory: Memory,
  opts: {
    stepTokens?: number;
    shrink?: number;
    tools?: ToolDefinition[];
    env?: Record<string, string>;
    answer?: (r: ChatRequest) => string;
  } = {},
) {
  const model = fakeLlm(opts.answer ?? (() => 'the summary'));
  const built = await buildRunPrompt(
    {
      db: fakeStore(memory),
      llm: model.llm,
      config: config(opts.env),
      logger: createLogger('silent'),
    },
    runOf(memory.rows),
    undefined,
    { tools: opts.tools ?? [], stepTokens: opts.stepTokens ?? 0, shrink: opts.shrink },
  );
  return { ...built, summaryCalls: model.requests };
}

/** A thread memory whose summary, if any, covers turns 0 to `throughTurn`. */
const fresh = (rows: Row[], summary?: { text: string; throughTurn: number }): Memory => ({
  rows,
  summary: summary?.text ?? null,
  summaryTokens: summary ? summaryTokens(summary.text) : 0,
  summaryThroughSeq: summary ? 2 * summary.throughTurn : null,
  saved: [],
});

const SYSTEM_TOKENS = messageTokens({ content: SYSTEM });
const RESERVE = summaryReserveTokens(64);
/** 10000 − 1000 (answer) − the system prompt − 500 (5 %): before summary, tools and steps. */
const FIXED = 10_000 - 1000 - SYSTEM_TOKENS - 500;

describe('the budget arithmetic', () => {
  test('5 % of the context window, rounded up', () => {
    expect(marginTokens(128_000)).toBe(6400);
    expect(marginTokens(2048)).toBe(103);
  });

  test('the prompt budget (ingress): context − max output − system prompt − margin', () => {
    const c = config();
    expect(systemPromptTokens(c)).toBe(SYSTEM_TOKENS);
    expect(promptBudget(c, 'm')).toBe(FIXED);
    const perModel = config({ CHAT_MODEL_CONTEXT_TOKENS: 'big=20000' });
    expect(promptBudget(perModel, 'big')).toBe(20_000 - 1000 - SYSTEM_TOKENS - 1000);
    expect(systemPromptTokens(config({ CHAT_SYSTEM_PROMPT: '' }))).toBe(0);
  });

  test('the window budget subtracts every fixed part, then shrinks, rounding down', () => {
    const parts = {
      contextTokens: 10_000,
      maxOutputTokens: 1000,
      systemTokens: 7,
      summaryTokens: 30,
      toolsTokens: 40,
      stepTokens: 51,
      shrink: 1,
    };
    expect(windowBudget(parts)).toBe(10_000 - 1000 - 7 - 30 - 40 - 51 - 500);
    expect(windowBudget({ ...parts, shrink: 0.5 })).toBe(Math.floor(8372 / 2));
  });
});

describe('buildRunPrompt: the window', () => {
  test('exactly the newest whole slots that fit; one more would not', async () => {
    // Slots 0–5 (200 tokens each) and the run's message (100). With a fold due, the summary's
    // cap is set aside: a budget of 699 holds the message and two slots (500), not three (700).
    const rows = conversation(6);
    const stepTokens = FIXED - RESERVE - 699;
    const tight = await build(fresh(rows), { stepTokens });
    expect(tight.report.budgetTokens).toBe(699);
    expect(tight.report.windowMessages).toBe(5);
    expect(tight.report.windowTokens).toBe(500);
    expect(tight.messages.slice(-5).map((m) => m.content)).toEqual([
      'm4.0',
      'm4.1',
      'm5.0',
      'm5.1',
      'm6.0',
    ]);

    const roomier = await build(fresh(rows), { stepTokens: stepTokens - 1 });
    expect(roomier.report.budgetTokens).toBe(700);
    expect(roomier.report.windowMessages).toBe(7);
    expect(roomier.report.windowTokens).toBe(700);
  });

  test('everything fits: no fold, no summary call, the whole thread in the window', async () => {
    const built = await build(fresh(conversation(3)));
    expect(built.summaryCalls).toHaveLength(0);
    expect(built.messages.map((m) => m.content)).toEqual([
      SYSTEM,
      'm0.0',
      'm0.1',
      'm1.0',
      'm1.1',
      'm2.0',
      'm2.1',
      'm3.0',
    ]);
    expect(built.report).toEqual({
      contextTokens: 10_000,
      budgetTokens: FIXED,
      systemTokens: SYSTEM_TOKENS,
      summaryTokens: 0,
      toolsTokens: 0,
      windowTokens: 700,
      windowMessages: 7,
      summarisedMessages: 0,
    });
  });

  test('the tool definitions and the steps count against it', async () => {
    const built = await build(fresh(conversation(1)), { tools: [weather], stepTokens: 321 });
    expect(built.report.toolsTokens).toBe(toolDefinitionTokens([weather]));
    expect(built.report.budgetTokens).toBe(FIXED - toolDefinitionTokens([weather]) - 321);
  });

  test('at most CHAT_MEMORY_RECENT_MESSAGES messages, starting at a slot', async () => {
    // 4 messages: the run's own and the 3 before it, the first of them a reply whose user
    // message is not in the window: its slot goes whole to the summary instead.
    const built = await build(fresh(conversation(5)), {
      env: { CHAT_MEMORY_RECENT_MESSAGES: '4' },
    });
    expect(built.messages.slice(2).map((m) => m.content)).toEqual(['m4.0', 'm4.1', 'm5.0']);
    expect(built.summaryCalls).toHaveLength(1);
    expect(built.report.summarisedMessages).toBe(4);
  });

  test("the run's own message is kept alone when even it is over the budget", async () => {
    const built = await build(fresh(conversation(2)), { stepTokens: FIXED });
    expect(built.report.budgetTokens).toBeLessThan(0);
    expect(built.report.windowMessages).toBe(1);
    expect(built.messages.at(-1)?.content).toBe('m2.0');
  });

  test("the run's own steps are not read as window (the loop sends them)", async () => {
    const rows = [...conversation(1), row(1, 1), row(1, 2)];
    const memory = fresh(rows);
    const run = { ...runOf(rows), userMessageId: 'msg_1_0' };
    const built = await buildRunPrompt(
      {
        db: fakeStore(memory),
        llm: fakeLlm(() => 's').llm,
        config: config(),
        logger: createLogger('silent'),
      },
      run,
      undefined,
      { tools: [], stepTokens: 200 },
    );
    expect(built.messages.map((m) => m.content)).toEqual([SYSTEM, 'm0.0', 'm0.1', 'm1.0']);
  });

  test('messages written before counting (tokens null) are counted when read', async () => {
    const rows = conversation(1).map((m) => ({ ...m, tokens: null }));
    const built = await build(fresh(rows));
    const expected = rows.reduce((sum, m) => sum + messageTokens(m), 0);
    expect(built.report.windowTokens).toBe(expected);
  });

  test('never overlaps what the summary covers', async () => {
    const built = await build(fresh(conversation(4), { text: 'old', throughTurn: 2 }));
    expect(built.summaryCalls).toHaveLength(0);
    expect(built.messages.map((m) => m.content)).toEqual([
      SYSTEM,
      summaryContent('old'),
      'm3.0',
      'm3.1',
      'm4.0',
    ]);
    expect(built.report.summaryTokens).toBe(summaryTokens('old'));
    expect(built.report.summarisedMessages).toBe(3);
    expect(built.report.budgetTokens).toBe(FIXED - summaryTokens('old'));
  });
});

describe('buildRunPrompt: the summary', () => {
  test('folds what left the window, capped, and stores it with its tokens as sent', async () => {
    const memory = fresh(conversation(6), { text: 'old', throughTurn: 0 });
    const built = await build(memory, { stepTokens: FIXED - RESERVE - 500 });
    const [call] = built.summaryCalls;
    expect(call?.maxTokens).toBe(64);
    // Slots 1–3 (those after the old summary, before the window of slots 4, 5 and the message).
    expect(call?.messages.at(-1)?.content).toContain('Previous summary:\nold');
    expect(call?.messages.at(-1)?.content).toContain('m3.1');
    expect(call?.messages.at(-1)?.content).not.toContain('m0.0');
    expect(call?.messages.at(-1)?.content).not.toContain('m4.0');
    expect(memory.saved).toEqual([
      {
        text: 'the summary',
        throughMessageId: 'msg_3_1',
        throughSeq: 6,
        tokens: summaryTokens('the summary'),
      } as never,
    ]);
    expect(built.messages[1]).toEqual({ role: 'system', content: summaryContent('the summary') });
    expect(built.report.summaryTokens).toBe(summaryTokens('the summary'));
    expect(built.report.summarisedMessages).toBe(4);
  });

  test('a summary longer than CHAT_SUMMARY_MAX_TOKENS is cut to it', async () => {
    const long = 'The user likes tea and asked about Paris. '.repeat(200);
    const memory = fresh(conversation(6));
    const built = await build(memory, { stepTokens: FIXED - RESERVE - 300, answer: () => long });
    const stored = memory.saved[0]?.text ?? '';
    expect(textTokens(stored)).toBeLessThanOrEqual(64);
    expect(textTokens(stored)).toBeGreaterThan(60);
    expect(long.startsWith(stored)).toBe(true);
    expect(built.report.summaryTokens).toBeLessThanOrEqual(RESERVE);
    expect(memory.saved[0]?.tokens).toBe(summaryTokens(stored));
  });

  test('capSummary leaves a summary within the cap alone and cuts a longer one', () => {
    expect(capSummary('short', 16)).toBe('short');
    const cut = capSummary('日本語のテキスト '.repeat(50), 16);
    expect(summaryTokens(cut)).toBeLessThanOrEqual(summaryReserveTokens(16));
    expect(cut).not.toContain('\uFFFD');
  });

  test('a failed summary: the newest older slots that fit go verbatim, the rest are left out', async () => {
    const memory = fresh(conversation(6));
    // Without a summary the budget is 900. A fold is due, so its cap is set aside first: the
    // window is the message and slots 3–5 (700). The fold fails: the 200 left take slot 2
    // verbatim; slots 0 and 1 are left out.
    const stepTokens = FIXED - 900;
    const model = fakeLlm(() => {
      throw new Error('model down');
    });
    const built = await buildRunPrompt(
      {
        db: fakeStore(memory),
        llm: model.llm,
        config: config(),
        logger: createLogger('silent'),
      },
      runOf(memory.rows),
      undefined,
      { tools: [], stepTokens },
    );
    expect(memory.saved).toHaveLength(0);
    expect(built.messages.map((m) => m.content)).toEqual([
      SYSTEM,
      'm2.0',
      'm2.1',
      'm3.0',
      'm3.1',
      'm4.0',
      'm4.1',
      'm5.0',
      'm5.1',
      'm6.0',
    ]);
    expect(built.report.windowMessages).toBe(9);
    expect(built.report.windowTokens).toBe(900);
  });
});

describe('buildRunPrompt: shrink (the overflow retry)', () => {
  test('halves the window budget, rounding down', async () => {
    const rows = conversation(6);
    const full = await build(fresh(rows, { text: 'old', throughTurn: 0 }));
    const half = await build(fresh(rows, { text: 'old', throughTurn: 0 }), { shrink: 0.5 });
    expect(half.report.budgetTokens).toBe(Math.floor(full.report.budgetTokens / 2));
  });

  test('a halved budget folds the oldest slots that no longer fit into the summary', async () => {
    const rows = conversation(6);
    const stepTokens = FIXED - RESERVE - 1000;
    const memory = fresh(rows);
    const half = await build(memory, { stepTokens, shrink: 0.5 });
    expect(half.report.budgetTokens).toBe(500);
    expect(half.report.windowMessages).toBe(5);
    expect(memory.saved[0]?.throughSeq).toBe(6);
    expect(half.messages[1]?.content).toBe(summaryContent('the summary'));
  });

  test('with a window of one message the summary is left out of the prompt', async () => {
    const memory = fresh(conversation(3), { text: 'old', throughTurn: 0 });
    const built = await build(memory, { stepTokens: FIXED, shrink: 0.5 });
    expect(built.messages.map((m) => m.content)).toEqual([SYSTEM, 'm3.0']);
    expect(built.report.summaryTokens).toBe(0);
    expect(built.report.summarisedMessages).toBe(0);
    // Still brought up to date for the next call.
    expect(memory.saved[0]?.throughSeq).toBe(4);
  });

  test('without shrink a window of one message keeps the summary', async () => {
    const memory = fresh(conversation(3), { text: 'old', throughTurn: 0 });
    const built = await build(memory, { stepTokens: FIXED });
    expect(built.messages.map((m) => m.content)).toEqual([
      SYSTEM,
      summaryContent('the summary'),
      'm3.0',
    ]);
  });
});
