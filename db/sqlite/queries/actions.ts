/**
 * A run paused for its client, on SQLite: the pause (tool outputs or approvals to wait for) and
 * the client's answer, which settles tool results in the run's slot and queues the run again.
 * Mirrors db/postgres/queries/actions.ts.
 */
import { and, eq, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { RunAnswer, RunAnswerResult, RunPause } from '../../store';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { type OutboxRow, type Run, runs } from '../schema';
import { insertOutboxStatement } from './outbox';
import { insertStepMessages } from './steps';

const p = sql.placeholder;
/** A pause's and an answer's statements (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'actions', (db) => ({
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare(),
    pause: db
      .update(runs)
      .set({ status: 'requires_action', action: sql`${p('action')}` })
      .where(and(eq(runs.id, p('id')), eq(runs.status, 'running')))
      .returning({ id: runs.id })
      .prepare(),
    answer: db
      .update(runs)
      .set({
        status: 'queued',
        action: null,
        resumed: true,
        approved: sql`${p('approved')}`,
        toolCallCount: sql`${p('toolCallCount')}`,
      })
      .where(eq(runs.id, p('id')))
      .returning()
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

/** See `Store.pauseRun`: one unit of the turn's group commit. */
export async function pauseRun(db: Db, input: RunPause): Promise<{ row: OutboxRow } | null> {
  const q = statements(db);
  return commitWrite(db, () => {
    // Only a running run pauses: a cancel that came first wins.
    const paused = q.pause.get({ id: input.runId, action: JSON.stringify(input.action) });
    if (!paused) return null;
    const row = q.insertOutbox.get({ ...input.event, enqueueRunId: null, now: input.now });
    return { row: row as OutboxRow };
  });
}

/**
 * See `Store.answerRun`: one unit of the turn's group commit. SQLite has one writer at a time,
 * so between the check (still waiting for this pause) and the writes no cancel, timeout or
 * other answer can come in.
 */
export async function answerRun(db: Db, input: RunAnswer): Promise<RunAnswerResult> {
  const q = statements(db);
  return commitWrite(db, (): RunAnswerResult => {
    // 1. The run: still waiting, for this kind of answer, to this pause.
    const run = q.getRun.get({ id: input.runId });
    if (!run) return { kind: 'unknown' };
    const { action } = run;
    if (
      run.status !== 'requires_action' ||
      action?.kind !== input.kind ||
      action.since !== input.since
    ) {
      return { kind: 'not_waiting', run };
    }
    // 2. The results it settles, in the run's slot, counted on the thread.
    insertStepMessages(db, run, input.messages, input.now);
    // 3. The run, queued again to go on where it paused.
    const answered = q.answer.get({
      id: run.id,
      approved: JSON.stringify(withApproved(run.approved, input.approved)),
      toolCallCount: input.toolCallCount,
    }) as Run;
    // 4. The results' rows, in order; the caller wakes the run's job.
    const rows = input.events.map(
      (event) => q.insertOutbox.get({ ...event, enqueueRunId: null, now: input.now }) as OutboxRow,
    );
    return { kind: 'answered', run: answered, rows };
  });
}

/** The calls approved so far, then the new ones, each once. */
const withApproved = (approved: string[], more: string[]) => [...new Set([...approved, ...more])];
