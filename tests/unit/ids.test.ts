import { describe, expect, test } from 'bun:test';
import { isCuid } from '@paralleldrive/cuid2';
import { newEventId, newMessageId, newRunId, newThreadId, THREAD_ID_PATTERN } from '../../src/ids';

describe('ids', () => {
  test('thr_ + 24 lowercase alphanumerics, a Cuid2', () => {
    const ids = new Set(Array.from({ length: 1000 }, newThreadId));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^thr_[a-z][a-z0-9]{23}$/);
      expect(isCuid(id.slice(4))).toBe(true);
    }
  });

  test('every position of a thread id is spread over the alphabet (no fixed or biased digits)', () => {
    const ids = Array.from({ length: 20_000 }, () => newThreadId().slice(4));
    for (let position = 1; position < 24; position++) {
      const counts = new Map<string, number>();
      for (const id of ids)
        counts.set(id[position] as string, (counts.get(id[position] as string) ?? 0) + 1);
      expect(counts.size).toBe(36);
      // 20 000 / 36 ≈ 556 per digit; a biased digit would sit far outside this band.
      for (const count of counts.values()) expect(count).toBeWithin(400, 720);
    }
  });

  test.each([
    ['msg_', newMessageId],
    ['run_', newRunId],
    ['evt_', newEventId],
  ])('%s + 24 lowercase alphanumerics, time-ordered', (prefix, make) => {
    const before = Date.now();
    const ids = Array.from({ length: 50_000 }, make);
    const after = Date.now();
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(new RegExp(`^${prefix}[a-z0-9]{24}$`));
    // Made in this order, they sort in this order, within a millisecond too.
    for (let i = 1; i < ids.length; i++)
      expect((ids[i - 1] as string) < (ids[i] as string)).toBe(true);
    // The first 9 digits are the time they were made.
    for (const id of [ids[0], ids.at(-1)] as string[]) {
      expect(Number.parseInt(id.slice(4, 13), 36)).toBeWithin(before, after + 1);
    }
  });

  test('a time-ordered id does not tell the next: the random part moves by random steps', () => {
    const ids = Array.from({ length: 2000 }, newRunId);
    const lows = ids.map((id) => Number.parseInt(id.slice(-8), 36));
    const steps = new Set<number>();
    for (let i = 1; i < ids.length; i++) {
      if ((ids[i] as string).slice(4, 13) === (ids[i - 1] as string).slice(4, 13)) {
        steps.add((lows[i] as number) - (lows[i - 1] as number));
      }
    }
    expect(steps.has(1)).toBe(false);
    expect(steps.size).toBeGreaterThan(100);
  });

  test('the random digits of ids made in different milliseconds are spread over the alphabet', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      ids.push(newMessageId());
      await Bun.sleep(1);
    }
    // Digits 10 to 15 (after the time): 400 ids × 6 positions = 2400 draws, ≈ 67 per digit.
    const counts = new Map<string, number>();
    for (const id of ids)
      for (const digit of id.slice(4 + 10, 4 + 16)) counts.set(digit, (counts.get(digit) ?? 0) + 1);
    expect(counts.size).toBe(36);
    for (const count of counts.values()) expect(count).toBeWithin(25, 120);
  });

  test('generated thread ids satisfy the pattern clients must follow', () => {
    expect(newThreadId()).toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('a'.repeat(65)).not.toMatch(new RegExp(THREAD_ID_PATTERN));
    expect('has space').not.toMatch(new RegExp(THREAD_ID_PATTERN));
  });
});
