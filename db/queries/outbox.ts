import { and, asc, isNull, lt, sql } from 'drizzle-orm';
import type { Db } from '../client';
import { commitWrite } from '../group-commit';
import { type OutboxRow, outbox } from '../schema';

export type NewOutboxRow = typeof outbox.$inferInsert;

/** Undelivered rows, oldest first, written before `createdBefore` (younger ones are in flight). */
export async function listPendingOutbox(
  db: Db,
  createdBefore: Date,
  limit: number,
): Promise<OutboxRow[]> {
  return db
    .select()
    .from(outbox)
    .where(and(isNull(outbox.deliveredAt), lt(outbox.createdAt, createdBefore)))
    .orderBy(asc(outbox.id))
    .limit(limit)
    .all();
}

/** Prepared once per database: a variable-length IN list would be rebuilt on every call. */
const markStatements = new WeakMap<Db, { run(values: { now: number; ids: string }): unknown }>();

/** Marks a delivered batch in one statement (the ids travel as one JSON array). */
export async function markOutboxDelivered(db: Db, ids: number[]): Promise<void> {
  let statement = markStatements.get(db);
  if (!statement) {
    statement = db
      .update(outbox)
      .set({ deliveredAt: sql`${sql.placeholder('now')}` }) // epoch ms, as the column stores
      .where(sql`${outbox.id} IN (SELECT value FROM json_each(${sql.placeholder('ids')}))`)
      .prepare();
    markStatements.set(db, statement);
  }
  const mark = statement;
  // Joins whatever else commits in this turn: no commit of its own under load.
  await commitWrite(db, () => mark.run({ now: Date.now(), ids: JSON.stringify(ids) }));
}

/** Inserts one outbox row and returns it; prepared, shared by ingress and the run job. */
export function insertOutboxStatement(db: Db) {
  const p = sql.placeholder;
  return db
    .insert(outbox)
    .values({
      eventId: p('eventId'),
      type: p('type'),
      runId: p('runId'),
      threadId: p('threadId'),
      occurredAt: p('occurredAt'),
      payload: p('payload'),
      enqueueRunId: p('enqueueRunId'),
      createdAt: p('now'),
    })
    .returning()
    .prepare();
}
