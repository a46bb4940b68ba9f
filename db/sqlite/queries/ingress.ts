import { and, eq, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import { type RunEnd, type RunRequest, type RunRequestResult, ThreadBusyError } from '../../store';
import { isUnfinished } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { idempotencyKeys, messages, type OutboxRow, type Run, runs, threads } from '../schema';
import { insertOutboxStatement } from './outbox';
import { cancelThreadRuns } from './run-ends';

const p = sql.placeholder;
/**
 * The hot path's statements, prepared once per database: building and compiling SQL on every
 * request cost more than running it.
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
      .where(and(eq(runs.threadId, p('threadId')), isUnfinished(runs.status)))
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
        tokens: p('tokens'),
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
        tools: p('tools'),
        clientTools: p('clientTools'),
        webhookUrl: p('webhookUrl'),
        createdAt: p('now'),
      })
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

type Statements = ReturnType<typeof statements>;

/**
 * See `Store.insertRunRequest`. SQLite has one writer at a time: these steps and any run's
 * `finishRun` cannot interleave, so no lock needs taking.
 */
export async function insertRunRequest<R>(
  db: Db,
  input: RunRequest<R>,
): Promise<RunRequestResult<R>> {
  const s = statements(db);
  try {
    return await commitWrite(db, () => write(db, s, input));
  } catch (error) {
    // `reject` on a busy thread: the transaction was undone, nothing is written.
    if (error instanceof ThreadBusyError) return { kind: 'busy', runId: error.runId };
    throw error;
  }
}

/** One accepted message's writes, inside the transaction the caller holds. */
function write<R>(db: Db, s: Statements, input: RunRequest<R>): RunRequestResult<R> {
  const { threadId, messageId, runId, idempotency: idem } = input;
  // Placeholders go through the columns' own mapping: pass Dates and objects, not raw values.
  const now = input.now;
  // 1. Claim the idempotency key. A key stored already answers with its first response (the
  // same request) or a conflict (another one), and nothing is written.
  if (idem) {
    const seen = s.findKey.get({ key: idem.key });
    if (seen) {
      return seen.requestHash === idem.requestHash
        ? { kind: 'replayed', response: seen.response as R }
        : { kind: 'conflict' };
    }
    s.insertKey.run({ key: idem.key, requestHash: idem.requestHash, response: idem.response, now });
  }
  // 2. Take the thread's slot: the thread is created on first use.
  const slot = s.claimSlot.get({ threadId, now });
  const seq = (slot?.nextSeq ?? 2) - 2;
  // 3. The thread's unfinished runs, by `multitask`: refused (undoing all of this), cancelled,
  // or left to run before this one.
  let ended: RunEnd[] = [];
  let cancelling: Run[] = [];
  if (input.multitask !== 'enqueue') {
    const head = s.busy.get({ threadId });
    if (head) {
      if (input.multitask === 'reject') throw new ThreadBusyError(head.id);
      ({ ended, cancelling } = cancelThreadRuns(db, {
        threadId,
        cancel: { reason: null, by: input.multitask, requestedAt: now.toISOString() },
        now,
        cancelledEvent: input.cancelledEvent,
        deleteMessages: input.multitask === 'rollback',
      }));
    }
  }
  // 4. Is a run of this thread still unfinished? Then its finish enqueues this run, not this
  // request.
  const busy = s.busy.get({ threadId });
  // 5. The message and its run, in that slot.
  s.insertMessage.run({
    id: messageId,
    threadId,
    runId,
    content: input.content,
    seq,
    tokens: input.tokens,
    now,
  });
  s.insertRun.run({
    id: runId,
    threadId,
    messageId,
    seq,
    model: input.model,
    tools: input.tools,
    clientTools: input.clientTools,
    webhookUrl: input.webhookUrl,
    now,
  });
  // 6. The announcement's outbox row, with the run's job only if no run of the thread was busy.
  const row = s.insertOutbox.get({ ...input.event, enqueueRunId: busy ? null : runId, now });
  return { kind: 'created', row: row as OutboxRow, ended, cancelling };
}
