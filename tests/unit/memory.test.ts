import { describe, expect, test } from 'bun:test';
import {
  buildPrompt,
  buildSummaryRequest,
  foldRange,
  type MemoryMessage,
  SUMMARY_INSTRUCTION,
} from '../../src/memory/prompt';

const msg = (seq: number, content = `m${seq}`): MemoryMessage => ({
  id: `msg_${seq}`,
  seq,
  role: seq % 2 === 0 ? 'user' : 'assistant',
  content,
});

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
