import { describe, expect, test } from 'bun:test';
import { compareIds, isStreamId } from '../../src/feeds/feed-reader';
import { formatEntry, formatReset } from '../../src/feeds/sse';

describe('compareIds', () => {
  test('orders stream ids by time, then sequence (not as strings)', () => {
    expect(compareIds('1700000000000-0', '1700000000000-1')).toBeLessThan(0);
    expect(compareIds('1700000000000-10', '1700000000000-9')).toBeGreaterThan(0);
    expect(compareIds('999-0', '1000-0')).toBeLessThan(0);
    expect(compareIds('5-5', '5-5')).toBe(0);
    expect(compareIds('0-0', '1-0')).toBeLessThan(0);
  });

  test('agrees with comparing the parts as numbers, for ids of any lengths and forms', () => {
    const parts = ['0', '1', '9', '10', '99', '100', '1700000000000', '1700000000001', '01'];
    const ids = parts.flatMap((ms) => parts.map((seq) => `${ms}-${seq}`)).concat(['5', '']);
    const byNumbers = (a: string, b: string) => {
      const [am = 0, as = 0] = a.split('-').map(Number);
      const [bm = 0, bs = 0] = b.split('-').map(Number);
      return Math.sign(am === bm ? as - bs : am - bm);
    };
    for (const a of ids) {
      for (const b of ids) {
        expect({ a, b, order: Math.sign(compareIds(a, b)) }).toEqual({
          a,
          b,
          order: byNumbers(a, b),
        });
      }
    }
  });
});

describe('isStreamId', () => {
  test('accepts the ids Redis writes, and nothing that Redis would refuse or read otherwise', () => {
    for (const id of ['0-0', '1-1', '1700000000000-0', '1700000000000-12', '9007199254740991-0']) {
      expect({ id, ok: isStreamId(id) }).toEqual({ id, ok: true });
    }
    const bad = [
      '',
      'garbage',
      '$',
      '+',
      '-',
      '>',
      '*',
      '-1-1',
      '1',
      '1-',
      '-1',
      '1-1-1',
      '01-1',
      '1-01',
      ' 1-1',
      '1-1 ',
      '1.5-0',
      '(1-1',
      '1e3-0',
      '9007199254740992-0',
      '18446744073709551615-0',
      '1-99999999999999999',
      `${'1'.repeat(10 * 1024)}-0`,
    ];
    for (const id of bad) expect({ id, ok: isStreamId(id) }).toEqual({ id, ok: false });
  });
});

describe('formatReset', () => {
  test('the id to resume from, the reset type, and its data without an eventId', () => {
    const run = { id: 'run_x', status: 'completed' };
    const text = formatReset({
      id: '5-1',
      runId: 'run_x',
      threadId: 'thr_x',
      occurredAt: '2026-01-01T00:00:00.000Z',
      // biome-ignore lint/suspicious/noExplicitAny: a partial run view is enough for the framing
      payload: { run } as any,
    });
    const [id, event, data, ...rest] = text.split('\n');
    expect([id, event, rest]).toEqual(['id: 5-1', 'event: agent.feed.reset', ['', '']]);
    expect(JSON.parse((data ?? '').slice('data: '.length))).toEqual({
      type: 'agent.feed.reset',
      runId: 'run_x',
      threadId: 'thr_x',
      occurredAt: '2026-01-01T00:00:00.000Z',
      payload: { run },
    });
  });
});

describe('formatEntry', () => {
  test('id, event and the event as one JSON object with the payload parsed', () => {
    const text = formatEntry({
      id: '1-2',
      fields: {
        type: 'agent.run.delta',
        eventId: 'evt_x',
        runId: 'run_x',
        threadId: 'thr_x',
        occurredAt: '2026-01-01T00:00:00.000Z',
        payload: '{"attempt":1,"index":0,"text":"line one\\nline two"}',
      },
    });
    const [id, event, data, ...rest] = text.split('\n');
    expect(id).toBe('id: 1-2');
    expect(event).toBe('event: agent.run.delta');
    // One data line even when the text has newlines: JSON escapes them.
    expect(rest).toEqual(['', '']);
    expect(JSON.parse((data ?? '').slice('data: '.length))).toEqual({
      type: 'agent.run.delta',
      eventId: 'evt_x',
      runId: 'run_x',
      threadId: 'thr_x',
      occurredAt: '2026-01-01T00:00:00.000Z',
      payload: { attempt: 1, index: 0, text: 'line one\nline two' },
    });
  });
});
