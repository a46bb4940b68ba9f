import { describe, expect, test } from 'bun:test';
import { RUN_STATUSES } from '../../db/types';
import { EVENT_TYPES } from '../../src/events/event';
import { endsWait } from '../../src/runs/wait';

describe('endsWait: when a GET run ?wait= is answered', () => {
  test('by status: terminal runs and paused ones; a cancelling run is waited on', () => {
    const ending = RUN_STATUSES.filter((status) => endsWait({ status }));
    expect(ending.sort()).toEqual(['cancelled', 'completed', 'failed', 'requires_action']);
    expect(endsWait({ status: 'cancelling' })).toBe(false);
  });

  test('by event: the terminal events and the pause; deltas and other events go on waiting', () => {
    const ending = EVENT_TYPES.filter((eventType) => endsWait({ eventType }));
    expect(ending).toEqual([
      'agent.run.requires_action',
      'agent.run.completed',
      'agent.run.failed',
      'agent.run.cancelled',
    ]);
    expect(endsWait({ eventType: undefined })).toBe(false);
  });
});
