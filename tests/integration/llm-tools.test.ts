import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { toolCallPieces, wireToolCalls } from '../../harness/fake-llm/tool-calls';
import { loadConfig } from '../../src/config';
import type { ChatMessage, Llm, ToolDefinition } from '../../src/llm/llm';
import { LlmError } from '../../src/llm/llm';
import { createLlm } from '../../src/llm/openai';
import { createMetrics, instrumentLlm } from '../../src/metrics/metrics';

// The model side of tool calling: the real SDK against the fake model over HTTP. No Redis.

const weather: ToolDefinition = {
  name: 'weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const clock: ToolDefinition = { name: 'clock', parameters: { type: 'object', properties: {} } };
const ask = (content: string): ChatMessage[] => [{ role: 'user', content }];
const MADE_ID = /^call_[a-z0-9]{24}$/;

let fake: FakeLlm;
let llm: Llm;

/** Runs `fn` streamed (with onDelta, as the run job calls) and not. */
const bothWays = [
  ['not streamed', false],
  ['streamed', true],
] as const;

async function chat(
  streamed: boolean,
  request: Omit<Parameters<Llm['chat']>[0], 'model' | 'onDelta'>,
) {
  const deltas: string[] = [];
  const result = await llm.chat({
    model: 'fake-model',
    ...request,
    ...(streamed ? { onDelta: (text: string) => deltas.push(text) } : {}),
  });
  return { result, deltas, body: fake.requests.at(-1)?.body };
}

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  const error = await promise.then(
    () => new Error('expected the call to fail'),
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof LlmError)) throw error;
  return error;
}

beforeAll(async () => {
  fake = await startFakeLlm({ quiet: true });
  llm = createLlm(
    loadConfig({ DATABASE_URL: 'file::memory:', OPENAI_BASE_URL: fake.url, LLM_TIMEOUT_MS: '500' }),
  );
});
afterAll(() => fake.stop());
beforeEach(() => fake.reset());

describe.each(bothWays)('tool calls, %s', (_, streamed) => {
  test('one call: its id, name and arguments, and no text', async () => {
    fake.enqueue({
      kind: 'tools',
      calls: [{ id: 'call_w1', name: 'weather', arguments: { city: 'Paris' } }],
    });
    const { result, deltas, body } = await chat(streamed, {
      messages: ask('weather?'),
      tools: [weather],
    });
    expect(result.content).toBe('');
    expect(result.toolCalls).toEqual([
      { id: 'call_w1', name: 'weather', arguments: '{"city":"Paris"}' },
    ]);
    expect(deltas).toEqual([]); // tool-call pieces are not text
    expect(body.stream === true).toBe(streamed);
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'The weather in a city',
          parameters: weather.parameters,
        },
      },
    ]);
    expect('tool_choice' in body).toBe(false);
  });

  test('several calls in one answer (parallel), each whole and in order', async () => {
    const long = { query: 'a long argument text, cut into many pieces', n: [1, 2, 3] };
    fake.enqueue({
      kind: 'tools',
      calls: [
        { id: 'call_a', name: 'search', arguments: long },
        { id: 'call_b', name: 'weather', arguments: { city: 'Reykjavík ❄' } },
        { id: 'call_c', name: 'clock' },
      ],
    });
    const { result } = await chat(streamed, { messages: ask('go'), tools: [weather, clock] });
    expect(result.toolCalls).toEqual([
      { id: 'call_a', name: 'search', arguments: JSON.stringify(long) },
      { id: 'call_b', name: 'weather', arguments: '{"city":"Reykjavík ❄"}' },
      { id: 'call_c', name: 'clock', arguments: '{}' },
    ]);
    // Streamed, the arguments came in many interleaved pieces (below: what the fake sends).
    if (streamed) expect(fake.requests[0]?.chunksSent).toBeGreaterThan(12);
  });

  test('calls without an id get one made up, each its own; a repeated id too', async () => {
    fake.enqueue({
      kind: 'tools',
      calls: [
        { id: null, name: 'weather', arguments: { city: 'Oslo' } },
        { id: null, name: 'weather', arguments: { city: 'Rome' } },
        { id: 'call_same', name: 'clock' },
        { id: 'call_same', name: 'clock' },
      ],
    });
    const { result } = await chat(streamed, { messages: ask('go'), tools: [weather, clock] });
    const [oslo, rome, first, second] = result.toolCalls;
    expect(oslo?.id).toMatch(MADE_ID);
    expect(rome?.id).toMatch(MADE_ID);
    expect(oslo?.id).not.toBe(rome?.id as string);
    expect(oslo?.arguments).toBe('{"city":"Oslo"}');
    expect(rome?.arguments).toBe('{"city":"Rome"}');
    expect(first?.id).toBe('call_same');
    expect(second?.id).toMatch(MADE_ID);
  });

  test('text and tool calls together: the text streams, the calls do not', async () => {
    fake.enqueue({
      kind: 'tools',
      content: 'Let me look that up.',
      calls: [{ id: 'call_w', name: 'weather', arguments: { city: 'Lima' } }],
    });
    const { result, deltas } = await chat(streamed, { messages: ask('go'), tools: [weather] });
    expect(result.content).toBe('Let me look that up.');
    expect(result.toolCalls).toEqual([
      { id: 'call_w', name: 'weather', arguments: '{"city":"Lima"}' },
    ]);
    expect(deltas.join('')).toBe(streamed ? 'Let me look that up.' : '');
  });

  test('arguments are passed on as the model wrote them, invalid JSON too; empty ones are {}', async () => {
    fake.enqueue({
      kind: 'tools',
      calls: [
        { id: 'call_1', name: 'weather', arguments: '{"city": "Par' },
        { id: 'call_2', name: 'clock', arguments: '' },
      ],
    });
    const { result } = await chat(streamed, { messages: ask('go'), tools: [weather, clock] });
    expect(result.toolCalls.map((c) => c.arguments)).toEqual(['{"city": "Par', '{}']);
  });

  test('a 200 with neither text nor tool calls is still llm_bad_response', async () => {
    fake.enqueue(
      streamed ? { kind: 'stream', chunks: [] } : { kind: 'empty' },
      { kind: 'tools', calls: [] },
      { kind: 'tools', calls: [{ id: 'call_x', name: '' }] },
    );
    for (let i = 0; i < 3; i++) {
      const error = await failure(chat(streamed, { messages: ask('go'), tools: [weather] }));
      expect({ kind: error.kind, code: error.code }).toEqual({
        kind: 'retryable',
        code: 'llm_bad_response',
      });
    }
  });

  test('tool results go back in OpenAI format, and the model sees them', async () => {
    const history: ChatMessage[] = [
      { role: 'user', content: 'weather and time?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_w', name: 'weather', arguments: '{"city":"Paris"}' },
          { id: 'call_c', name: 'clock', arguments: '{}' },
        ],
      },
      { role: 'tool', toolCallId: 'call_w', content: '{"temp":21}' },
      { role: 'tool', toolCallId: 'call_c', content: '12:00' },
    ];
    const { result, body } = await chat(streamed, { messages: history, tools: [weather, clock] });
    expect(body.messages).toEqual([
      { role: 'user', content: 'weather and time?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_w',
            type: 'function',
            function: { name: 'weather', arguments: '{"city":"Paris"}' },
          },
          { id: 'call_c', type: 'function', function: { name: 'clock', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_w', content: '{"temp":21}' },
      { role: 'tool', tool_call_id: 'call_c', content: '12:00' },
    ]);
    expect(result.content).toBe('echo: weather said {"temp":21}; clock said 12:00');
    expect(result.toolCalls).toEqual([]);
  });

  test("toolChoice 'none' is sent with the tools; without tools neither is sent", async () => {
    const history: ChatMessage[] = [
      { role: 'user', content: 'hi' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [{ id: 'c1', name: 'clock', arguments: '{}' }],
      },
      { role: 'tool', toolCallId: 'c1', content: '09:30' },
    ];
    const last = await chat(streamed, { messages: history, tools: [clock], toolChoice: 'none' });
    expect(last.body.tool_choice).toBe('none');
    expect(last.body.tools).toHaveLength(1);
    expect(last.body.messages[1].content).toBe('Checking.');
    const auto = await chat(streamed, { messages: ask('hi'), tools: [clock], toolChoice: 'auto' });
    expect(auto.body.tool_choice).toBe('auto');
    // No tools (or an empty list): the body is exactly what it was before tools existed.
    for (const tools of [undefined, []]) {
      const plain = await chat(streamed, { messages: ask('hi'), tools, toolChoice: 'none' });
      expect(Object.keys(plain.body).sort()).toEqual(
        streamed ? ['messages', 'model', 'stream', 'stream_options'] : ['messages', 'model'],
      );
      expect(plain.result).toMatchObject({ content: 'echo: hi', toolCalls: [] });
    }
  });
});

describe("the fake's directives: [[tool:NAME {args}]]", () => {
  test('each directive is a call; the results are echoed back', async () => {
    const message =
      'please [[tool:weather {"city":"Paris"}]] and [[tool:clock]] and [[tool:search {"q":[[1,2]]}]]';
    const first = await chat(true, { messages: ask(message), tools: [weather, clock] });
    expect(first.result.toolCalls.map(({ name, arguments: a }) => [name, a])).toEqual([
      ['weather', '{"city":"Paris"}'],
      ['clock', '{}'],
      ['search', '{"q":[[1,2]]}'],
    ]);
    expect(fake.requests[0]?.behaviour?.kind).toBe('tools');
    const [w, c, s] = first.result.toolCalls;
    const second = await chat(true, {
      messages: [
        ...ask(message),
        { role: 'assistant', content: '', toolCalls: first.result.toolCalls },
        { role: 'tool', toolCallId: w?.id as string, content: 'sunny' },
        { role: 'tool', toolCallId: c?.id as string, content: '12:00' },
        { role: 'tool', toolCallId: s?.id as string, content: 'nothing found' },
      ],
      tools: [weather, clock],
    });
    expect(second.result).toMatchObject({
      content: 'echo: weather said sunny; clock said 12:00; search said nothing found',
      toolCalls: [],
    });
  });

  test('arguments that are not JSON are sent as written', async () => {
    const { result } = await chat(false, {
      messages: ask('[[tool:weather {city: Paris]]'),
      tools: [weather],
    });
    expect(result.toolCalls).toMatchObject([{ name: 'weather', arguments: '{city: Paris' }]);
  });

  test('no tools offered, or tool_choice none: the directive is only echoed', async () => {
    const text = 'x [[tool:clock]]';
    for (const request of [
      { messages: ask(text) },
      { messages: ask(text), tools: [clock], toolChoice: 'none' as const },
    ]) {
      const { result } = await chat(true, request);
      expect(result).toMatchObject({ content: `echo: ${text}`, toolCalls: [] });
    }
  });
});

describe("the fake's streamed tool calls", () => {
  test('pieces of 3 to 7 characters, the calls interleaved, ids and names in the first piece', () => {
    const calls = wireToolCalls([
      { id: 'a', name: 'one', arguments: { text: 'abcdefghijklmnopqrstuvwxyz' } },
      { id: 'b', name: 'two', arguments: { text: '0123456789' } },
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: pieces as the wire has them
    const pieces = toolCallPieces(calls, 'split').map(([piece]) => piece as any);
    expect(pieces.slice(0, 2)).toEqual([
      { index: 0, id: 'a', type: 'function', function: { name: 'one', arguments: '' } },
      { index: 1, id: 'b', type: 'function', function: { name: 'two', arguments: '' } },
    ]);
    const rest = pieces.slice(2);
    expect(rest.slice(0, 4).map((p) => p.index)).toEqual([0, 1, 0, 1]);
    for (const [index, call] of calls.entries()) {
      const own = rest.filter((p) => p.index === index);
      for (const piece of own) expect(Object.keys(piece).sort()).toEqual(['function', 'index']);
      const sizes = own.map((p) => p.function.arguments.length);
      // Every piece 3 to 7 characters; the last one what is left.
      for (const size of sizes.slice(0, -1)) expect(size >= 3 && size <= 7).toBe(true);
      expect(own.map((p) => p.function.arguments).join('')).toBe(call.function.arguments);
    }
  });
});

describe('around the calls', () => {
  test('a tool stream that goes silent for LLM_TIMEOUT_MS is a timeout', async () => {
    fake.enqueue({
      kind: 'tools',
      delayMs: 1500,
      calls: [{ id: 'call_s', name: 'weather', arguments: { city: 'Paris' } }],
    });
    const error = await failure(chat(true, { messages: ask('go'), tools: [weather] }));
    expect({ kind: error.kind, code: error.code }).toEqual({
      kind: 'retryable',
      code: 'llm_timeout',
    });
  });

  test('the metrics wrapper passes tools and toolChoice through', async () => {
    const instrumented = instrumentLlm(llm, createMetrics());
    fake.enqueue({ kind: 'tools', calls: [{ id: 'call_i', name: 'clock' }] });
    const result = await instrumented.chat({
      model: 'fake-model',
      messages: ask('time?'),
      tools: [clock],
      toolChoice: 'auto',
    });
    expect(result.toolCalls).toEqual([{ id: 'call_i', name: 'clock', arguments: '{}' }]);
    expect(fake.requests[0]?.body).toMatchObject({
      tool_choice: 'auto',
      tools: [{ type: 'function' }],
    });
  });
});
