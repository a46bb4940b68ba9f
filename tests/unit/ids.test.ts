import { describe, expect, test } from 'bun:test';
import { isCuid } from '@paralleldrive/cuid2';
import { newEventId, newMessageId, newRunId, newThreadId, THREAD_ID_PATTERN } from '../../src/ids';

describe('ids', () => {
  test.each([
    ['thr_', newThreadId],
    ['msg_', newMessageId],
    ['run_', newRunId],
    ['evt_', newEventId],
  ])('%s + 24 lowercase alphanumerics, a Cuid2', (prefix, make) => {
    const ids = new Set(Array.from({ length: 1000 }, make));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(new RegExp(`^${prefix}[a-z][a-z0-9]{23}$`));
      expect(isCuid(id.slice(prefix.length))).toBe(true);
    }
  });

  test('every position is spread over the alphabet (no fixed or biased digits)', () => {
    const ids = Array.from({ length: 20_000 }, () => newRunId().slice(4));
    for (let position = 1; position < 24; position++) {
      const counts = new Map<string, number>();
      for (const id of ids)
        counts.set(id[position] as string, (counts.get(id[position] as string) ?? 0) + 1);
      expect(counts.size).toBe(36);
      // 20 000 / 36 ≈ 556 per digit; a biased digit would sit far outside this band.
      for (const count of counts.values()) expect(count).toBeWithin(400, 720);
    }
  });

  test('generated thread ids satisfy the pattern clients must follow', () => {
    expect(newThreadId()).toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('a'.repeat(65)).not.toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('has space').not.toMatch(new RegExp(THREAD_ID_PATTERN));
  });
});
