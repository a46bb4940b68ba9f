/**
 * A run paused for its client, on PostgreSQL: the pause (tool outputs or approvals to wait for)
 * and the client's answer, which settles tool results in the run's slot and queues the run
 * again. Mirrors db/sqlite/queries/actions.ts.
 */
import { sql } from 'drizzle-orm';
import type { RunAnswer, RunAnswerResult, RunPause } from '../../store';
import type { Db } from '../database';
import type { OutboxRow, Run } from '../schema';
import { storable } from '../storable';
import { insertOutbox } from './outbox';
import { lockRun } from './run-ends';
import { storeStepMessages } from './steps';
import { webhooksOf } from './webhooks';

/**
 * See `Store.pauseRun`. The run is locked first, with its thread, as `commitStep` locks it: a
 * cancel that comes at the same moment either finds it paused or made it cancelling first.
 */
export async function pauseRun(db: Db, input: RunPause): Promise<{ row: OutboxRow } | null> {
  if (!storable(input.runId)) return null;
  return db.transaction(async (tx) => {
    // Only a running run pauses: a cancel that came first wins.
    const run = await lockRun(tx, input.runId);
    if (run?.status !== 'running') return null;
    await tx.execute(sql`
      update runs set status = 'requires_action', action = ${JSON.stringify(input.action)}::text::jsonb
      where id = ${run.id}`);
    return { row: await insertOutbox(tx, input.event, null, input.now, webhooksOf(db)) };
  });
}

/**
 * See `Store.answerRun`. The run is locked first, with its thread, as `finishRun` locks it: a
 * cancel, the deadline's failure or another answer waits for this one, so the check (still
 * waiting for this pause) holds until the commit.
 */
export async function answerRun(db: Db, input: RunAnswer): Promise<RunAnswerResult> {
  if (!storable(input.runId)) return { kind: 'unknown' };
  const now = input.now.toISOString();
  return db.transaction(async (tx): Promise<RunAnswerResult> => {
    // 1. The run: still waiting, for this kind of answer, to this pause.
    const run = await lockRun(tx, input.runId);
    if (!run) return { kind: 'unknown' };
    const { action } = run;
    if (
      run.status !== 'requires_action' ||
      action?.kind !== input.kind ||
      action.since !== input.since
    ) {
      return { kind: 'not_waiting', run };
    }
    // 2 and 3 are the parts of one statement: one round trip.
    // 2. The results it settles, in the run's slot, counted on the thread.
    const stored = storeStepMessages(run, input.messages, now);
    // 3. The run, queued again to go on where it paused.
    const approved = withApproved(run.approved, input.approved);
    await tx.execute(sql`
      with ${stored} answered as (
        update runs set status = 'queued', action = null, resumed = true,
          approved = ${JSON.stringify(approved)}::text::jsonb, tool_call_count = ${input.toolCallCount}
        where id = ${run.id}
      )
      select 1`);
    // 4. The results' rows, in order; the caller wakes the run's job.
    const rows = [];
    for (const event of input.events)
      rows.push(await insertOutbox(tx, event, null, input.now, webhooksOf(db)));
    const answered: Run = {
      ...run,
      status: 'queued',
      action: null,
      resumed: true,
      approved,
      toolCallCount: input.toolCallCount,
    };
    return { kind: 'answered', run: answered, rows };
  });
}

/** The calls approved so far, then the new ones, each once. */
const withApproved = (approved: string[], more: string[]) => [...new Set([...approved, ...more])];
