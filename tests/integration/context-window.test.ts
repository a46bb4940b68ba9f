import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type FakeLlm, type OverflowWording, startFakeLlm } from '../../harness/fake-llm';
import { loadConfig } from '../../src/config';
import { type Llm, LlmError, type ToolDefinition } from '../../src/llm/llm';
import { createLlm } from '../../src/llm/openai';
import { messageTokens, toolDefinitionTokens } from '../../src/memory/tokens';

// The fake's context window through the real SDK and our classification: no Redis, no store.

const weather: ToolDefinition = {
  name: 'weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } } },
};
const long = 'The quick brown fox jumps over the lazy dog. '.repeat(40);

let fake: FakeLlm;
let llm: Llm;

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

describe('the fake model with a context window', () => {
  test('counts a prompt as memory counts it: content + framing, tool calls, the tools JSON', async () => {
    await llm.chat({
      model: 'fake-model',
      tools: [weather],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: '',
          toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
        },
        { role: 'tool', toolCallId: 'call_1', content: '{"temp":21}' },
      ],
    });
    const expected =
      messageTokens({ content: 'Be brief.' }) +
      messageTokens({ content: 'Weather in Paris?' }) +
      messageTokens({
        content: '',
        toolCalls: [{ toolCallId: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
      }) +
      messageTokens({ content: '{"temp":21}' });
    // The same but for the order of a tool's keys in its JSON.
    const recorded = fake.requests[0]?.promptTokens ?? 0;
    expect(Math.abs(recorded - expected - toolDefinitionTokens([weather]))).toBeLessThanOrEqual(2);
  });

  test.each<OverflowWording>(['openai', 'vllm', 'llamacpp', 'ollama', 'lmstudio'])(
    "over the window: %s's refusal is context_overflow, a prompt within it is answered",
    async (wording) => {
      fake.setContextWindow(100, wording);
      fake.enqueue({ kind: 'reply', content: 'short answer' });
      const refused = await failure(
        llm.chat({ model: 'fake-model', messages: [{ role: 'user', content: long }] }),
      );
      expect(refused).toMatchObject({ kind: 'final', code: 'context_overflow' });
      expect(fake.requests[0]?.promptTokens).toBeGreaterThan(100);
      // The refusal left the queued reply for the next request.
      const answered = await llm.chat({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(answered.content).toBe('short answer');
    },
  );

  test('streamed requests are refused the same way', async () => {
    fake.setContextWindow(100, 'llamacpp');
    const refused = await failure(
      llm.chat({
        model: 'fake-model',
        messages: [{ role: 'user', content: long }],
        onDelta: () => {},
      }),
    );
    expect(refused.code).toBe('context_overflow');
  });

  test('a one-shot context-overflow refuses whatever the size; null turns the window off', async () => {
    fake.enqueue({ kind: 'context-overflow', wording: 'vllm' });
    const refused = await failure(
      llm.chat({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(refused.code).toBe('context_overflow');
    expect(refused.message).toContain('maximum context length');

    fake.setContextWindow(10);
    fake.setContextWindow(null);
    const answered = await llm.chat({
      model: 'fake-model',
      messages: [{ role: 'user', content: long }],
    });
    expect(answered.content).toStartWith('echo:');
  });

  test('a window given at start is OpenAI-worded and survives reset', async () => {
    const small = await startFakeLlm({ quiet: true, contextTokens: 50 });
    try {
      const client = createLlm(
        loadConfig({ DATABASE_URL: 'file::memory:', OPENAI_BASE_URL: small.url }),
      );
      small.reset();
      const refused = await failure(
        client.chat({ model: 'fake-model', messages: [{ role: 'user', content: long }] }),
      );
      expect(refused.code).toBe('context_overflow');
      expect(refused.message).toContain("This model's maximum context length is 50 tokens");
    } finally {
      await small.stop();
    }
  });

  test('maxTokens is sent as max_tokens', async () => {
    await llm.chat({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
      maxTokens: 64,
    });
    expect(fake.requests[0]?.body.max_tokens).toBe(64);
    await llm.chat({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(fake.requests[1]?.body).not.toHaveProperty('max_tokens');
  });
});
