import { describe, expect, test } from 'bun:test';
import { LlmError } from '../../src/llm/llm';
import { readToolCalls, ToolCallAssembler } from '../../src/llm/tool-calls';

// What OpenAI-compatible servers other than OpenAI send: pieces without an index, a name
// repeated in every piece. The fake sends OpenAI's own shape (tests/integration/llm-tools.test.ts).
describe('ToolCallAssembler', () => {
  test('pieces without an index: a new id starts a call, the rest continue the latest', () => {
    const calls = new ToolCallAssembler();
    calls.add({ id: 'call_1', function: { name: 'weather', arguments: '{"ci' } });
    calls.add({ function: { arguments: 'ty":"Oslo"}' } });
    calls.add({ id: 'call_2', function: { name: 'clock', arguments: '' } });
    calls.add({ id: 'call_2', function: { arguments: '{}' } });
    expect(calls.finish()).toEqual([
      { id: 'call_1', name: 'weather', arguments: '{"city":"Oslo"}' },
      { id: 'call_2', name: 'clock', arguments: '{}' },
    ]);
  });

  test('a name sent again in every piece is not doubled; calls come out in index order', () => {
    const calls = new ToolCallAssembler();
    calls.add({ index: 1, id: 'b', type: 'function', function: { name: 'two', arguments: '[' } });
    calls.add({ index: 0, id: 'a', type: 'function', function: { name: 'one', arguments: '{' } });
    calls.add({ index: 1, function: { name: 'two', arguments: ']' } });
    calls.add({ index: 0, function: { name: 'one', arguments: '}' } });
    expect(calls.finish()).toEqual([
      { id: 'a', name: 'one', arguments: '{}' },
      { id: 'b', name: 'two', arguments: '[]' },
    ]);
  });

  test('a custom (non-function) call cannot be acted on: a bad response', () => {
    const calls = new ToolCallAssembler();
    calls.add({ index: 0, id: 'c', type: 'custom' });
    expect(() => calls.finish()).toThrow(LlmError);
    expect(() => readToolCalls([{ id: 'c', type: 'custom', custom: {} }])).toThrow(
      'not a named function call',
    );
  });

  test('a completion without tool_calls has none', () => {
    expect(readToolCalls(undefined)).toEqual([]);
    expect(readToolCalls(null)).toEqual([]);
  });
});
