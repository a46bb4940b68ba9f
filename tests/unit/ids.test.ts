import { describe, expect, test } from 'bun:test';
import { newEventId, newMessageId, newRunId, newThreadId, THREAD_ID_PATTERN } from '../../src/ids';

describe('ids', () => {
  test.each([
    ['thr_', newThreadId],
    ['msg_', newMessageId],
    ['run_', newRunId],
    ['evt_', newEventId],
  ])('%s + 24 lowercase alphanumerics', (prefix, make) => {
    const ids = new Set(Array.from({ length: 1000 }, make));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(new RegExp(`^${prefix}[a-z0-9]{24}$`));
  });

  test('generated thread ids satisfy the pattern clients must follow', () => {
    expect(newThreadId()).toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('a'.repeat(65)).not.toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('has space').not.toMatch(new RegExp(THREAD_ID_PATTERN));
  });
});
