/**
 * A running run's durable steps, on PostgreSQL: the messages of its tool calls and their
 * results, committed one unit at a time in the run's slot, so another attempt resumes after them
 * instead of calling the model and the tools again. Mirrors db/sqlite/queries/steps.ts.
 */
import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { NewStepMessage, StepCommit, StepCommitResult } from '../../store';
import type { Db } from '../database';
import { type Message, messages, type Run, runs } from '../schema';
import { storable } from '../storable';
import { insertOutbox } from './outbox';
import { lockRun } from './run-ends';
import { webhooksOf } from './webhooks';

const p = sql.placeholder;
/** The read outside a transaction (see db/prepared.ts); `commitStep` runs in one. */
const statements = (db: Db) =>
  prepared(db, 'steps', (db) => ({
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
      .prepare('run_steps'),
  }));

const json = (value: unknown) => (value == null ? null : JSON.stringify(value));

/**
 * See `Store.commitStep`. The run is locked first, with its thread, as `finishRun` and
 * `cancelRun` lock it: a cancel, a finish or another attempt's step waits for this one, so the
 * checks (running, positions free) hold until the commit.
 */
export async function commitStep(db: Db, input: StepCommit): Promise<StepCommitResult> {
  if (!storable(input.runId)) return { kind: 'not_running' };
  const { runId } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx): Promise<StepCommitResult> => {
    // 1. The run: only a running one takes steps (a cancel or a finish that came first wins).
    const run = await lockRun(tx, runId);
    if (run?.status !== 'running') return { kind: 'not_running' };
    // 2. Its places: another attempt that committed this step first has them.
    const seq = run.seq + 1;
    const positions = input.messages.map((m) => m.position);
    if (positions.length > 0) {
      const taken = await tx
        .select({ id: messages.id })
        .from(messages)
        .where(
          and(
            eq(messages.threadId, run.threadId),
            eq(messages.seq, seq),
            inArray(messages.position, positions),
          ),
        )
        .limit(1);
      if (taken.length > 0) return { kind: 'taken' };
    }
    // 3 and 4 are the parts of one statement: one round trip.
    // 3. The messages, in the run's slot, counted on the thread.
    const stored = storeStepMessages(
      { id: runId, threadId: run.threadId, seq: run.seq },
      input.messages,
      now,
    );
    // 4. The run's counts, usage and budget report so far; absent ones (null) stay as they are.
    await tx.execute(sql`
      with ${stored} progressed as (
        update runs set steps = coalesce(${input.steps ?? null}::integer, steps),
          tool_call_count = coalesce(${input.toolCallCount ?? null}::integer, tool_call_count),
          usage = coalesce(${json(input.usage)}::text::jsonb, usage),
          memory = coalesce(${json(input.memory)}::text::jsonb, memory)
        where id = ${runId}
      )
      select 1`);
    // 5. The events' rows, in order; no job rides on them.
    const rows = [];
    for (const event of input.events)
      rows.push(await insertOutbox(tx, event, null, input.now, webhooksOf(db)));
    return { kind: 'committed', rows };
  });
}

/**
 * Messages of a run's steps in its slot, counted on its thread: the head of a WITH query (its
 * parts end in a comma), or nothing for none. `commitStep`'s, and `answerRun`'s for the results
 * a client settles. `now` is ISO text.
 */
export function storeStepMessages(
  run: Pick<Run, 'id' | 'threadId' | 'seq'>,
  stepMessages: NewStepMessage[],
  now: string,
): SQL {
  if (stepMessages.length === 0) return sql``;
  const seq = run.seq + 1;
  return sql`
    stored as (
      insert into messages (id, thread_id, run_id, role, content, seq, position, tool_calls,
                            tool_call_id, name, is_error, tokens, created_at)
      values ${sql.join(
        stepMessages.map(
          (m) => sql`(${m.id}, ${run.threadId}, ${run.id}, ${m.role}, ${m.content}, ${seq},
                      ${m.position}, ${json(m.role === 'assistant' ? m.toolCalls : null)}::text::jsonb,
                      ${m.role === 'tool' ? m.toolCallId : null},
                      ${m.role === 'tool' ? m.name : null},
                      ${m.role === 'tool' ? m.isError : null}::boolean, ${m.tokens}::integer,
                      ${now}::timestamptz)`,
        ),
        sql`, `,
      )}
    ),
    counted as (
      update threads set message_count = message_count + ${stepMessages.length},
        updated_at = ${now}::timestamptz
      where id = ${run.threadId}
    ),`;
}

/** See `Store.listRunSteps`: by position; none for an unknown run. */
export async function listRunSteps(db: Db, runId: string): Promise<Message[]> {
  if (!storable(runId)) return [];
  const rows = await statements(db).listSteps.execute({ runId });
  return rows.map((row) => row.message);
}
