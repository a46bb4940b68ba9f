import { sql } from 'drizzle-orm';
import {
  type RunEnd,
  type RunRequest,
  type RunRequestResult,
  ThreadBusyError,
  type WebhookTargets,
} from '../../store';
import { type Run, UNFINISHED_SQL } from '../../types';
import { clientOf, type Db, type Tx } from '../database';
import { type Conn, commitWrite } from '../group-commit';
import { Params } from '../raw-rows';
import { insertedOutboxRow, insertOutbox, outboxInsertCtes } from './outbox';
import { cancelThreadRuns } from './run-ends';
import { UNFINISHED } from './runs';
import { webhooksOf } from './webhooks';

/**
 * See `Store.insertRunRequest`. PostgreSQL runs many of these at once, so the order of locks
 * matters: the idempotency key's insert waits for a concurrent request with the same key, and
 * the thread's upsert locks the thread row before the "is a run of this thread unfinished?"
 * check, which `finishRun` also takes before it looks for the next run. Either this request's
 * run is seen by that finish (which enqueues it), or that finish is seen here (and this run
 * carries its own job): never neither.
 */
export async function insertRunRequest<R>(
  db: Db,
  input: RunRequest<R>,
): Promise<RunRequestResult<R>> {
  if (input.multitask === 'enqueue' && !input.idempotency) {
    return commitWrite(clientOf(db), enqueueUnit(input, webhooksOf(db)));
  }
  try {
    return await db.transaction((tx) => write(tx, input, webhooksOf(db)));
  } catch (error) {
    // `reject` on a busy thread: the transaction was undone, nothing is written.
    if (error instanceof ThreadBusyError) return { kind: 'busy', runId: error.runId };
    throw error;
  }
}

/**
 * Takes the thread's slot, creating the thread on first use; locks the thread row (see
 * `insertRunRequest`). The hot path's first statement.
 */
const CLAIM_SLOT = `
  insert into threads (id, created_at, updated_at, next_seq, message_count)
  values ($1, $2::timestamptz, $2::timestamptz, 2, 1)
  on conflict (id) do update set next_seq = threads.next_seq + 2,
    message_count = threads.message_count + 1, updated_at = excluded.updated_at`;

/**
 * The common message (`enqueue`, no idempotency key) as a unit of the group commit: two
 * statements sent at once, with no answer awaited between them. The first takes the thread's
 * slot and its lock; the second, with a snapshot taken after that lock (so it sees a finish
 * that committed while it waited), reads the slot back, asks whether a run of the thread is
 * unfinished, and inserts the message, its run and its outbox row (with the run's job only if
 * none was) and the event's webhook deliveries.
 */
function enqueueUnit<R>(input: RunRequest<R>, webhooks: WebhookTargets) {
  const { threadId, event } = input;
  const now = input.now.toISOString();
  const params = new Params();
  const thread = params.add(threadId);
  const runId = params.add(input.runId);
  const messageId = params.add(input.messageId);
  const at = `${params.add(now)}::timestamptz`;
  const text = `
    with busy as (
      select 1 from runs where thread_id = ${thread} and status in ${UNFINISHED_SQL} limit 1
    ),
    slot as (select next_seq - 2 as seq from threads where id = ${thread}),
    message as (
      insert into messages (id, thread_id, run_id, role, content, seq, tokens, created_at)
      select ${messageId}, ${thread}, ${runId}, 'user', ${params.add(input.content)}, seq,
             ${params.add(input.tokens)}::integer, ${at}
      from slot
    ),
    run as (
      insert into runs (id, thread_id, user_message_id, seq, model, tools, client_tools,
                        webhook_url, created_at)
      select ${runId}, ${thread}, ${messageId}, seq, ${params.add(input.model)},
             ${params.add(JSON.stringify(input.tools))}::text::jsonb,
             ${params.add(JSON.stringify(input.clientTools))}::text::jsonb,
             ${params.add(input.webhookUrl)}, ${at}
      from slot
    ),
    ${outboxInsertCtes(
      params,
      event,
      `case when exists (select 1 from busy) then null else ${runId} end`,
      now,
      webhooks,
      input.webhookUrl,
    )}
    select id, enqueue_run_id from stored`;
  return {
    threadId,
    run: async (conn: Conn): Promise<RunRequestResult<R>> => {
      const [, [row]] = await Promise.all([
        conn.query(CLAIM_SLOT, [threadId, now]),
        conn.query(text, params.values),
      ]);
      if (!row) throw new Error('outbox insert returned no row');
      return {
        kind: 'created',
        row: insertedOutboxRow(event, row as never, input.now),
        ended: [],
        cancelling: [],
      };
    },
  };
}

/** One accepted message's writes, inside the transaction the caller holds. */
async function write<R>(
  tx: Tx,
  input: RunRequest<R>,
  webhooks: WebhookTargets,
): Promise<RunRequestResult<R>> {
  const { threadId, messageId, runId, idempotency: idem } = input;
  // Plain SQL, not the columns' mapping: timestamps go as ISO text, cast to timestamptz.
  const now = input.now.toISOString();
  // 1. Claim the idempotency key. A key stored already answers with its first response (the
  // same request) or a conflict (another one), and nothing is written.
  if (idem) {
    const claimed = await tx.execute(sql`
      insert into idempotency_keys (key, request_hash, response, created_at)
      values (${idem.key}, ${idem.requestHash}, ${JSON.stringify(idem.response)}::text::jsonb,
              ${now}::timestamptz)
      on conflict do nothing
      returning key`);
    if (claimed.length === 0) {
      const [seen] = await tx.execute<{ request_hash: string; response: unknown }>(
        sql`select request_hash, response from idempotency_keys where key = ${idem.key}`,
      );
      if (!seen) throw new Error('idempotency key vanished while it was being claimed');
      return seen.request_hash === idem.requestHash
        ? { kind: 'replayed', response: seen.response as R }
        : { kind: 'conflict' };
    }
  }
  // 2. Take the thread's slot: the thread is created on first use.
  const [slot] = await tx.execute<{ next_seq: number }>(sql`
    insert into threads (id, created_at, updated_at, next_seq, message_count)
    values (${threadId}, ${now}::timestamptz, ${now}::timestamptz, 2, 1)
    on conflict (id) do update set next_seq = threads.next_seq + 2,
      message_count = threads.message_count + 1, updated_at = excluded.updated_at
    returning next_seq`);
  const seq = (slot?.next_seq ?? 2) - 2;
  // 3. The thread's unfinished runs, by `multitask`: refused (undoing all of this), cancelled,
  // or left to run before this one.
  let ended: RunEnd[] = [];
  let cancelling: Run[] = [];
  if (input.multitask !== 'enqueue') {
    const [head] = await tx.execute<{ id: string }>(sql`
      select id from runs where thread_id = ${threadId} and status in ${UNFINISHED} limit 1`);
    if (head) {
      if (input.multitask === 'reject') throw new ThreadBusyError(head.id);
      ({ ended, cancelling } = await cancelThreadRuns(tx, {
        threadId,
        cancel: { reason: null, by: input.multitask, requestedAt: now },
        now: input.now,
        cancelledEvent: input.cancelledEvent,
        deleteMessages: input.multitask === 'rollback',
        webhooks,
      }));
    }
  }
  // 4. Is a run of this thread still unfinished? Then its finish enqueues this run, not this
  // request. A statement of its own, after the upsert took the thread's lock: it must see a
  // finish that committed while this request waited for that lock.
  const busy = await tx.execute(sql`
    select 1 from runs where thread_id = ${threadId} and status in ${UNFINISHED} limit 1`);
  // 5. The message and its run, in that slot.
  await tx.execute(sql`
    with message as (
      insert into messages (id, thread_id, run_id, role, content, seq, tokens, created_at)
      values (${messageId}, ${threadId}, ${runId}, 'user', ${input.content}, ${seq},
              ${input.tokens}, ${now}::timestamptz)
    )
    insert into runs (id, thread_id, user_message_id, seq, model, tools, client_tools,
                      webhook_url, created_at)
    values (${runId}, ${threadId}, ${messageId}, ${seq}, ${input.model},
            ${JSON.stringify(input.tools)}::text::jsonb, ${JSON.stringify(input.clientTools)}::text::jsonb,
            ${input.webhookUrl}, ${now}::timestamptz)`);
  // 6. The announcement's outbox row, with the run's job only if no run of the thread was busy.
  const row = await insertOutbox(
    tx,
    input.event,
    busy.length > 0 ? null : runId,
    input.now,
    webhooks,
  );
  return { kind: 'created', row, ended, cancelling };
}
