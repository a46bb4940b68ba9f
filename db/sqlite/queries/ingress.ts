import { and, eq, inArray, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { RunRequest, RunRequestResult } from '../../store';
import type { Db } from '../client';
import { commitWrite } from '../group-commit';
import { idempotencyKeys, messages, type OutboxRow, runs, threads } from '../schema';
import { insertOutboxStatement } from './outbox';
import { ACTIVE } from './runs';

const p = sql.placeholder;
/**
 * The hot path's statements, prepared once per database: building and compiling SQL on every
 * request cost more than running it (bench P1).
 */
const statements = (db: Db) =>
  prepared(db, 'ingress', (db) => ({
    findKey: db
      .select()
      .from(idempotencyKeys)
      .where(eq(idempotencyKeys.key, p('key')))
      .prepare(),
    insertKey: db
      .insert(idempotencyKeys)
      .values({
        key: p('key'),
        requestHash: p('requestHash'),
        response: p('response'),
        createdAt: p('now'),
      })
      .prepare(),
    // Creates the thread on first use, else takes the next conversation slot: one statement.
    claimSlot: db
      .insert(threads)
      .values({
        id: p('threadId'),
        createdAt: p('now'),
        updatedAt: p('now'),
        nextSeq: 2,
        messageCount: 1,
      })
      .onConflictDoUpdate({
        target: threads.id,
        set: {
          nextSeq: sql`${threads.nextSeq} + 2`,
          messageCount: sql`${threads.messageCount} + 1`,
          updatedAt: sql`excluded.updated_at`,
        },
      })
      .returning({ nextSeq: threads.nextSeq })
      .prepare(),
    busy: db
      .select({ id: runs.id })
      .from(runs)
      .where(and(eq(runs.threadId, p('threadId')), inArray(runs.status, ACTIVE)))
      .limit(1)
      .prepare(),
    insertMessage: db
      .insert(messages)
      .values({
        id: p('id'),
        threadId: p('threadId'),
        runId: p('runId'),
        role: 'user',
        content: p('content'),
        seq: p('seq'),
        createdAt: p('now'),
      })
      .prepare(),
    insertRun: db
      .insert(runs)
      .values({
        id: p('id'),
        threadId: p('threadId'),
        userMessageId: p('messageId'),
        seq: p('seq'),
        model: p('model'),
        createdAt: p('now'),
      })
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

type Statements = ReturnType<typeof statements>;

/** One accepted message's writes, inside a transaction the caller holds. */
function write<R>(s: Statements, input: RunRequest<R>): RunRequestResult<R> {
  // Placeholders go through the columns' own mapping: pass Dates and objects, not raw values.
  const now = input.now;
  const idem = input.idempotency;
  if (idem) {
    const seen = s.findKey.get({ key: idem.key });
    if (seen) {
      return seen.requestHash === idem.requestHash
        ? { kind: 'replayed', response: seen.response as R }
        : { kind: 'conflict' };
    }
    s.insertKey.run({ key: idem.key, requestHash: idem.requestHash, response: idem.response, now });
  }
  const slot = s.claimSlot.get({ threadId: input.threadId, now });
  const seq = (slot?.nextSeq ?? 2) - 2;
  const busy = s.busy.get({ threadId: input.threadId });
  s.insertMessage.run({
    id: input.messageId,
    threadId: input.threadId,
    runId: input.runId,
    content: input.content,
    seq,
    now,
  });
  s.insertRun.run({
    id: input.runId,
    threadId: input.threadId,
    messageId: input.messageId,
    seq,
    model: input.model,
    now,
  });
  const row = s.insertOutbox.get({ ...input.event, enqueueRunId: busy ? null : input.runId, now });
  return { kind: 'created', row: row as OutboxRow };
}

/** See `Store.insertRunRequest`. */
export function insertRunRequest<R>(db: Db, input: RunRequest<R>): Promise<RunRequestResult<R>> {
  const s = statements(db);
  return commitWrite(db, () => write(s, input));
}
