/**
 * A running run's durable steps, on SQLite: the messages of its tool calls and their results,
 * committed one unit at a time in the run's slot, so another attempt resumes after them instead
 * of calling the model and the tools again. Mirrors db/postgres/queries/steps.ts.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { NewStepMessage, StepCommit, StepCommitResult } from '../../store';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { type Message, messages, type OutboxRow, type Run, runs, threads } from '../schema';
import { insertOutboxStatement } from './outbox';

const p = sql.placeholder;
/** A run's statements for every step it commits (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'steps', (db) => ({
    getRun: db
      .select({ threadId: runs.threadId, seq: runs.seq, status: runs.status })
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare(),
    // The positions travel as one JSON array: one statement for every size of step.
    taken: db
      .select({ id: messages.id })
      .from(messages)
      .where(
        and(
          eq(messages.threadId, p('threadId')),
          eq(messages.seq, p('seq')),
          sql`${messages.position} IN (SELECT value FROM json_each(${p('positions')}))`,
        ),
      )
      .limit(1)
      .prepare(),
    // The nullable json and boolean columns take driver values (JSON text, 1/0) through sql``:
    // the columns' own mapping would store a null as the text 'null' and as 0.
    insertMessage: db
      .insert(messages)
      .values({
        id: p('id'),
        threadId: p('threadId'),
        runId: p('runId'),
        role: p('role'),
        content: p('content'),
        seq: p('seq'),
        position: p('position'),
        toolCalls: sql`${p('toolCalls')}`,
        toolCallId: p('toolCallId'),
        name: p('name'),
        isError: sql`${p('isError')}`,
        tokens: p('tokens'),
        createdAt: p('now'),
      })
      .prepare(),
    count: db
      .update(threads)
      .set({
        messageCount: sql`${threads.messageCount} + ${p('count')}`,
        updatedAt: sql`${p('now')}`,
      })
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    // Absent counts, usage and memory (null) leave the run's as they are.
    progress: db
      .update(runs)
      .set({
        steps: sql`coalesce(${p('steps')}, ${runs.steps})`,
        toolCallCount: sql`coalesce(${p('toolCallCount')}, ${runs.toolCallCount})`,
        usage: sql`coalesce(${p('usage')}, ${runs.usage})`,
        memory: sql`coalesce(${p('memory')}, ${runs.memory})`,
      })
      .where(eq(runs.id, p('id')))
      .prepare(),
    // The run's slot, found from the run: (thread_id, seq) leads the unique index of places.
    // The reply (an assistant message without tool calls) is not a step.
    listSteps: db
      .select({ message: messages })
      .from(runs)
      .innerJoin(
        messages,
        and(
          eq(messages.threadId, runs.threadId),
          eq(messages.seq, sql`${runs.seq} + 1`),
          eq(messages.runId, runs.id),
        ),
      )
      .where(
        and(
          eq(runs.id, p('runId')),
          sql`not (${messages.role} = 'assistant' and ${messages.toolCalls} is null)`,
        ),
      )
      .orderBy(asc(messages.position))
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

/**
 * See `Store.commitStep`: one unit of the turn's group commit. SQLite has one writer at a time,
 * so between the checks (running, positions free) and the writes no other attempt, cancel or
 * finish can come in.
 */
export async function commitStep(db: Db, input: StepCommit): Promise<StepCommitResult> {
  const q = statements(db);
  const { runId, now } = input;
  return commitWrite(db, (): StepCommitResult => {
    // 1. The run: only a running one takes steps (a cancel or a finish that came first wins).
    const run = q.getRun.get({ id: runId });
    if (run?.status !== 'running') return { kind: 'not_running' };
    // 2. Its places: another attempt that committed this step first has them.
    const seq = run.seq + 1;
    const positions = JSON.stringify(input.messages.map((m) => m.position));
    if (q.taken.get({ threadId: run.threadId, seq, positions })) return { kind: 'taken' };
    // 3. The messages, in the run's slot, counted on the thread.
    insertStepMessages(
      db,
      { id: runId, threadId: run.threadId, seq: run.seq },
      input.messages,
      now,
    );
    // 4. The run's counts, usage and budget report so far.
    q.progress.run({
      id: runId,
      steps: input.steps ?? null,
      toolCallCount: input.toolCallCount ?? null,
      usage: json(input.usage),
      memory: json(input.memory),
    });
    // 5. The events' rows, in order; no job rides on them.
    const rows = input.events.map(
      (event) => q.insertOutbox.get({ ...event, enqueueRunId: null, now }) as OutboxRow,
    );
    return { kind: 'committed', rows };
  });
}

/**
 * Writes messages of a run's steps in its slot and counts them on its thread, inside the caller's
 * unit: `commitStep`'s, and `answerRun`'s for the results a client settles.
 */
export function insertStepMessages(
  db: Db,
  run: Pick<Run, 'id' | 'threadId' | 'seq'>,
  stepMessages: NewStepMessage[],
  now: Date,
): void {
  const q = statements(db);
  const seq = run.seq + 1;
  for (const m of stepMessages) {
    q.insertMessage.run({
      id: m.id,
      threadId: run.threadId,
      runId: run.id,
      role: m.role,
      content: m.content,
      seq,
      position: m.position,
      toolCalls: m.role === 'assistant' ? json(m.toolCalls) : null,
      toolCallId: m.role === 'tool' ? m.toolCallId : null,
      name: m.role === 'tool' ? m.name : null,
      isError: m.role === 'tool' ? Number(m.isError) : null,
      tokens: m.tokens,
      now,
    });
  }
  if (stepMessages.length > 0) {
    q.count.run({ threadId: run.threadId, count: stepMessages.length, now: now.getTime() });
  }
}

/** See `Store.listRunSteps`: by position; none for an unknown run. */
export async function listRunSteps(db: Db, runId: string): Promise<Message[]> {
  const rows = statements(db).listSteps.all({ runId });
  return rows.map((row) => row.message);
}
