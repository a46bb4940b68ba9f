import { describe, expect, test } from 'bun:test';
import {
  buildPrompt,
  buildSummaryRequest,
  foldRange,
  type MemoryMessage,
  SUMMARY_INSTRUCTION,
  stepMessages,
} from '../../src/memory/prompt';
import { alignWindow, completeToolGroups } from '../../src/memory/window';

const plain = { toolCalls: null, toolCallId: null, name: null, isError: null };

/** A user message (even slot) or a reply (odd slot), at position 0 of its slot. */
const msg = (seq: number, content = `m${seq}`): MemoryMessage => ({
  id: `msg_${seq}`,
  seq,
  position: 0,
  role: seq % 2 === 0 ? 'user' : 'assistant',
  content,
  ...plain,
});

/** A run's step that called tools: the calls are `call_<name>` with `{"city":"Paris"}`. */
const calls = (seq: number, position: number, names: string[], content = ''): MemoryMessage => ({
  id: `msg_${seq}_${position}`,
  seq,
  position,
  role: 'assistant',
  content,
  ...plain,
  toolCalls: names.map((name) => ({
    toolCallId: `call_${name}`,
    name,
    arguments: '{"city":"Paris"}',
  })),
});

/** One tool call's result. */
const result = (
  seq: number,
  position: number,
  name: string,
  content = '{"temp":21}',
  isError = false,
): MemoryMessage => ({
  id: `msg_${seq}_${position}`,
  seq,
  position,
  role: 'tool',
  content,
  ...plain,
  toolCallId: `call_${name}`,
  name,
  isError,
});

/** A run's reply after its steps. */
const reply = (seq: number, position: number, content = `r${seq}`): MemoryMessage => ({
  ...msg(seq, content),
  id: `msg_${seq}_${position}`,
  position,
});

const ids = (messages: MemoryMessage[]) => messages.map((m) => m.id);

describe('foldRange', () => {
  test('nothing to fold while the window reaches the start of the thread', () => {
    expect(foldRange(0, null)).toBeNull();
  });
  test('everything before the window when there is no summary yet', () => {
    expect(foldRange(10, null)).toEqual({ afterSeq: -1, beforeSeq: 10 });
  });
  test('only what the summary does not cover yet', () => {
    expect(foldRange(12, 7)).toEqual({ afterSeq: 7, beforeSeq: 12 });
  });
  test('nothing when the summary reaches the window', () => {
    expect(foldRange(8, 7)).toBeNull();
    expect(foldRange(8, 9)).toBeNull();
  });
});

describe('buildSummaryRequest', () => {
  test('instruction as system; old summary and the transcript as user', () => {
    const request = buildSummaryRequest('old facts', [msg(0, 'hi'), msg(1, 'hello')]);
    expect(request).toEqual([
      { role: 'system', content: SUMMARY_INSTRUCTION },
      {
        role: 'user',
        content: 'Previous summary:\nold facts\n\nNew messages:\nuser: hi\n\nassistant: hello',
      },
    ]);
  });
  test('tool calls and results are folded in as text, errors marked', () => {
    const request = buildSummaryRequest(null, [
      msg(0, 'weather in Paris and Rome?'),
      calls(1, 0, ['weather', 'rain'], 'Let me look.'),
      result(1, 1, 'weather'),
      result(1, 2, 'rain', 'HTTP 500: down', true),
      reply(1, 3, '21 °C; rain unknown.'),
    ]);
    expect(request[1]?.content).toBe(
      'Previous summary:\n(none)\n\nNew messages:\n' +
        'user: weather in Paris and Rome?\n\n' +
        'assistant: Let me look.\n' +
        'assistant called weather({"city":"Paris"})\n' +
        'assistant called rain({"city":"Paris"})\n\n' +
        'tool weather: {"temp":21}\n\n' +
        'tool rain (error): HTTP 500: down\n\n' +
        'assistant: 21 °C; rain unknown.',
    );
  });
  test('a tool-call step without text is only its calls', () => {
    expect(buildSummaryRequest(null, [calls(1, 0, ['weather'])])[1]?.content).toEndWith(
      'New messages:\nassistant called weather({"city":"Paris"})',
    );
  });
  test('says so when there is no previous summary', () => {
    expect(buildSummaryRequest(null, [msg(0)])[1]?.content).toStartWith(
      'Previous summary:\n(none)',
    );
  });
});

describe('buildPrompt', () => {
  test('system prompt, summary, then the recent window with their roles', () => {
    const prompt = buildPrompt({
      systemPrompt: 'Be brief.',
      summary: 'S',
      uncovered: [],
      recent: [msg(8), msg(9), msg(10)],
    });
    expect(prompt.map((m) => m.role)).toEqual(['system', 'system', 'user', 'assistant', 'user']);
    expect(prompt[0]?.content).toBe('Be brief.');
    expect(prompt[1]?.content).toContain('S');
    expect(prompt.slice(2).map((m) => m.content)).toEqual(['m8', 'm9', 'm10']);
  });
  test('no system messages when there is neither a system prompt nor a summary', () => {
    expect(
      buildPrompt({ systemPrompt: null, summary: null, uncovered: [], recent: [msg(0)] }),
    ).toEqual([{ role: 'user', content: 'm0' }]);
  });
  test('a failed summary leaves the older messages verbatim before the window', () => {
    const prompt = buildPrompt({
      systemPrompt: null,
      summary: 'old',
      uncovered: [msg(4), msg(5)],
      recent: [msg(6)],
    });
    expect(prompt.map((m) => m.content)).toEqual([
      expect.stringContaining('old'),
      'm4',
      'm5',
      'm6',
    ]);
  });
});

describe('the tool messages in a prompt', () => {
  const step = [
    calls(1, 0, ['weather', 'rain'], 'Checking.'),
    result(1, 1, 'weather'),
    result(1, 2, 'rain', 'boom', true),
  ];

  test('a tool-call step maps to assistant toolCalls, its results to tool messages', () => {
    const prompt = buildPrompt({
      systemPrompt: null,
      summary: null,
      uncovered: [],
      recent: [msg(0, 'weather?'), ...step, reply(1, 3, 'Sunny.'), msg(2, 'thanks')],
    });
    expect(prompt).toEqual([
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [
          { id: 'call_weather', name: 'weather', arguments: '{"city":"Paris"}' },
          { id: 'call_rain', name: 'rain', arguments: '{"city":"Paris"}' },
        ],
      },
      { role: 'tool', toolCallId: 'call_weather', content: '{"temp":21}' },
      { role: 'tool', toolCallId: 'call_rain', content: 'boom' },
      { role: 'assistant', content: 'Sunny.' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  test('a reply has no toolCalls field, not even an empty one', () => {
    const [assistant] = buildPrompt({
      systemPrompt: null,
      summary: null,
      uncovered: [],
      recent: [{ ...msg(1), toolCalls: [] }],
    });
    expect(assistant).toEqual({ role: 'assistant', content: 'm1' });
  });

  test("stepMessages maps a run's own steps as they are, a half step included", () => {
    expect(stepMessages([calls(3, 0, ['weather', 'rain']), result(3, 1, 'weather')])).toEqual([
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_weather', name: 'weather', arguments: '{"city":"Paris"}' },
          { id: 'call_rain', name: 'rain', arguments: '{"city":"Paris"}' },
        ],
      },
      { role: 'tool', toolCallId: 'call_weather', content: '{"temp":21}' },
    ]);
    expect(stepMessages([])).toEqual([]);
  });
});

describe('alignWindow', () => {
  test('a window that starts inside a slot drops that slot: it goes to the summary instead', () => {
    // The last 4 messages: the tail of run 1's slot (a result and the reply), then 2 and 3.
    const window = alignWindow([result(1, 2, 'rain'), reply(1, 3), msg(2), msg(3)]);
    expect(ids(window)).toEqual(['msg_2', 'msg_3']);
    // foldRange starts at the window's first slot, so slot 1 is folded next.
    expect(foldRange(window[0]?.seq ?? 0, null)).toEqual({ afterSeq: -1, beforeSeq: 2 });
  });

  test('a window that starts at a slot keeps it whole', () => {
    const whole = [calls(1, 0, ['weather']), result(1, 1, 'weather'), reply(1, 2), msg(2)];
    expect(alignWindow(whole)).toEqual(whole);
    expect(alignWindow([msg(4), msg(5), msg(6)])).toEqual([msg(4), msg(5), msg(6)]);
    expect(alignWindow([])).toEqual([]);
  });

  test("the run's own message is kept even when all before it is one partial slot", () => {
    expect(ids(alignWindow([result(5, 3, 'weather'), reply(5, 4), msg(6)]))).toEqual(['msg_6']);
  });

  test('drops incomplete groups after aligning', () => {
    const window = alignWindow([msg(2), calls(3, 0, ['weather']), msg(4)]);
    expect(ids(window)).toEqual(['msg_2', 'msg_4']);
  });
});

describe('completeToolGroups', () => {
  test('complete groups are kept in order, results in any order of their calls', () => {
    const messages = [
      msg(0),
      calls(1, 0, ['a', 'b']),
      result(1, 1, 'b'),
      result(1, 2, 'a'),
      calls(1, 3, ['c']),
      result(1, 4, 'c'),
      reply(1, 5),
    ];
    expect(completeToolGroups(messages)).toEqual(messages);
  });

  test('a call without all of its results is dropped with the results it has', () => {
    // A failed run: its second step's calls were committed, one result of two.
    const messages = [
      msg(0),
      calls(1, 0, ['a']),
      result(1, 1, 'a'),
      calls(1, 2, ['b', 'c']),
      result(1, 3, 'b'),
      msg(2),
    ];
    expect(ids(completeToolGroups(messages))).toEqual(['msg_0', 'msg_1_0', 'msg_1_1', 'msg_2']);
  });

  test('a call with no result at all, at the end, is dropped', () => {
    expect(ids(completeToolGroups([msg(0), calls(1, 0, ['a'])]))).toEqual(['msg_0']);
  });

  test('a tool message without its call right before it is dropped', () => {
    const orphan = [msg(0), result(1, 1, 'a'), msg(2)];
    expect(ids(completeToolGroups(orphan))).toEqual(['msg_0', 'msg_2']);
    // A result for a call of another step, or one result too many, does not join a group.
    const stray = [calls(1, 0, ['a']), result(1, 1, 'a'), result(1, 2, 'a'), result(1, 3, 'x')];
    expect(ids(completeToolGroups(stray))).toEqual(['msg_1_0', 'msg_1_1']);
    // Something other than a result between a call and its result breaks the group.
    const split = [calls(1, 0, ['a']), reply(1, 1), result(1, 2, 'a')];
    expect(ids(completeToolGroups(split))).toEqual(['msg_1_1']);
  });

  test('buildPrompt drops incomplete groups from the uncovered messages too', () => {
    const prompt = buildPrompt({
      systemPrompt: null,
      summary: null,
      uncovered: [msg(0), calls(1, 0, ['a']), msg(2)],
      recent: [result(3, 1, 'a'), msg(4)],
    });
    expect(prompt).toEqual([
      { role: 'user', content: 'm0' },
      { role: 'user', content: 'm2' },
      { role: 'user', content: 'm4' },
    ]);
  });
});
