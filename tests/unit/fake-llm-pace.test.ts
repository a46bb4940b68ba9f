import { describe, expect, test } from 'bun:test';
import { startFakeLlm } from '../../harness/fake-llm';
import { directivePace } from '../../harness/fake-llm/directives';

describe("the fake model's [[pace:MS]]", () => {
  test("is read from the conversation's latest user message only", () => {
    const user = (content: string) => ({ role: 'user', content });
    expect(directivePace({ messages: [user('hello [[pace:60]]')] })).toBe(60);
    expect(directivePace({ messages: [user('hello')] })).toBeNull();
    expect(directivePace({ messages: [user('[[pace:5]]'), user('later')] })).toBeNull();
    // A request ending with tool results still takes the pace of the user message before them.
    const afterTools = [
      user('[[tool:hold]] [[pace:25]]'),
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', function: { name: 'hold' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'one two' },
    ];
    expect(directivePace({ messages: afterTools })).toBe(25);
    expect(directivePace({})).toBeNull();
  });

  test('streams the echo one word a piece, the pace the delay between them', async () => {
    const llm = await startFakeLlm({ quiet: true });
    try {
      const response = await fetch(`${llm.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'fake-model',
          stream: true,
          messages: [{ role: 'user', content: 'a b c [[pace:1]]' }],
        }),
      });
      const text = await response.text();
      const pieces = text
        .split('\n\n')
        .filter((frame) => frame.startsWith('data: {'))
        .map((frame) => JSON.parse(frame.slice(6)).choices[0]?.delta?.content)
        .filter((piece) => piece);
      expect(pieces).toEqual(['echo: ', 'a ', 'b ', 'c ', '[[pace:1]]']);
      expect(llm.requests[0]?.behaviour).toEqual({ kind: 'stream', delayMs: 1 });
    } finally {
      await llm.stop();
    }
  });
});
