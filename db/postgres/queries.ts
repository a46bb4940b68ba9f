import {
  and,
  asc,
  desc,
  eq,
  gt,
  inArray,
  isNull,
  lt,
  lte,
  ne,
  notExists,
  or,
  sql,
} from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { prepared } from '../prepared';
import type {
  DeliveredOutboxRow,
  RunError,
  RunFinish,
  RunRequest,
  RunRequestResult,
  ThreadMemory,
} from '../store';
import type { Message, OutboxRow, Run, Thread } from '../types';
import * as schema from './schema';

const { idempotencyKeys, messages, outbox, runs, threads } = schema;
// No relational schema: the queries use the builders only, and a schema costs every transaction.
export type Db = PostgresJsDatabase;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const ACTIVE = ['queued', 'running'] as const;

/**
 * See `Store.insertRunRequest`. PostgreSQL runs many of these at once, so the order of locks
 * matters: the idempotency key's insert waits for a concurrent request with the same key, and
 * the thread's upsert locks the thread row before the "is a run of this thread unfinished?"
 * check, which `finishRun` also takes before it looks for the next run. Either this request's
 * run is seen by that finish (which enqueues it), or that finish is seen here (and this run
 * carries its own job): never neither.
 */
export function insertRunRequest<R>(db: Db, input: RunRequest<R>): Promise<RunRequestResult<R>> {
  const { threadId, messageId, runId, idempotency: idem } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx): Promise<RunRequestResult<R>> => {
    if (idem) {
      const claimed = await tx.execute(sql`
        insert into idempotency_keys (key, request_hash, response, created_at)
        values (${idem.key}, ${idem.requestHash}, ${JSON.stringify(idem.response)}::jsonb,
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
    const [slot] = await tx.execute<{ next_seq: number }>(sql`
      insert into threads (id, created_at, updated_at, next_seq, message_count)
      values (${threadId}, ${now}::timestamptz, ${now}::timestamptz, 2, 1)
      on conflict (id) do update set next_seq = threads.next_seq + 2,
        message_count = threads.message_count + 1, updated_at = excluded.updated_at
      returning next_seq`);
    const seq = (slot?.next_seq ?? 2) - 2;
    // A statement of its own, after the upsert took the thread's lock: it must see a finish
    // that committed while this request waited for that lock.
    const busy = await tx.execute(sql`
      select 1 from runs where thread_id = ${threadId} and status in ('queued', 'running') limit 1`);
    await tx.execute(sql`
      with message as (
        insert into messages (id, thread_id, run_id, role, content, seq, created_at)
        values (${messageId}, ${threadId}, ${runId}, 'user', ${input.content}, ${seq},
                ${now}::timestamptz)
      )
      insert into runs (id, thread_id, user_message_id, seq, model, created_at)
      values (${runId}, ${threadId}, ${messageId}, ${seq}, ${input.model}, ${now}::timestamptz)`);
    const row = await insertOutbox(tx, input.event, busy.length > 0 ? null : runId, input.now);
    return { kind: 'created', row };
  });
}

async function insertOutbox(
  tx: Tx,
  event: RunRequest<unknown>['event'],
  enqueueRunId: string | null,
  now: Date,
): Promise<OutboxRow> {
  const [row] = await tx
    .insert(outbox)
    .values({ ...event, enqueueRunId, createdAt: now })
    .returning();
  if (!row) throw new Error('outbox insert returned no row');
  return row;
}

/**
 * Whether PostgreSQL can hold this text at all (no U+0000, no unpaired surrogate). An id that it
 * cannot hold was never stored: a lookup by it finds nothing, as it does on SQLite, rather than
 * failing. (Ingress rejects such text before it is stored.)
 */
const storable = (text: string) => !text.includes('\u0000') && text.isWellFormed();

const p = sql.placeholder;

/**
 * The statements a run or a request runs outside a transaction, prepared once per database
 * (db/prepared.ts). Inside a transaction a prepared statement would run on another connection,
 * so the transactions send plain SQL.
 */
const statements = (db: Db) => prepared(db, 'postgres', prepareAll);

function prepareAll(db: Db) {
  return {
    getRun: db
      .select()
      .from(runs)
      .where(eq(runs.id, p('id')))
      .prepare('get_run'),
    startAttempt: db
      .update(runs)
      .set({
        status: 'running',
        attempts: sql`${runs.attempts} + 1`,
        startedAt: sql`coalesce(${runs.startedAt}, ${p('now')}::timestamptz)`,
        finishedAt: null,
      })
      .where(and(eq(runs.id, p('id')), ne(runs.status, 'completed')))
      .returning()
      .prepare('start_run_attempt'),
    retry: db
      .update(runs)
      .set({ status: 'queued', attempts: sql`${p('attempts')}`, error: sql`${p('error')}::jsonb` })
      .where(and(eq(runs.id, p('id')), ne(runs.status, 'completed')))
      .prepare('record_run_retry'),
    markDelivered: db
      .update(outbox)
      .set({ deliveredAt: sql`${p('now')}::timestamptz` })
      .where(sql`${outbox.id} = any(${p('ids')}::bigint[])`)
      .returning({ id: outbox.id, threadId: outbox.threadId, enqueueRunId: outbox.enqueueRunId })
      .prepare('mark_outbox_delivered'),
    getThread: db
      .select()
      .from(threads)
      .where(eq(threads.id, p('id')))
      .prepare('get_thread'),
    saveSummary: db
      .update(threads)
      .set({
        summary: sql`${p('text')}`,
        summaryThroughMessageId: sql`${p('throughMessageId')}`,
        summaryThroughSeq: sql`${p('throughSeq')}::integer`,
      })
      .where(eq(threads.id, p('threadId')))
      .prepare('save_summary'),
    memory: db
      .select({
        summary: threads.summary,
        summaryThroughSeq: threads.summaryThroughSeq,
        id: messages.id,
        seq: messages.seq,
        role: messages.role,
        content: messages.content,
      })
      .from(threads)
      .leftJoin(
        messages,
        and(eq(messages.threadId, threads.id), lte(messages.seq, p('throughSeq'))),
      )
      .where(eq(threads.id, p('threadId')))
      .orderBy(desc(messages.seq))
      .limit(p('count'))
      .prepare('thread_memory'),
    getMessage: db
      .select()
      .from(messages)
      .where(eq(messages.id, p('id')))
      .prepare('get_message'),
    between: db
      .select()
      .from(messages)
      .where(
        and(
          eq(messages.threadId, p('threadId')),
          gt(messages.seq, p('afterSeq')),
          lt(messages.seq, p('beforeSeq')),
        ),
      )
      .orderBy(asc(messages.seq))
      .prepare('messages_between'),
  };
}

export async function getRun(db: Db, runId: string): Promise<Run | undefined> {
  if (!storable(runId)) return undefined;
  const [run] = await statements(db).getRun.execute({ id: runId });
  return run;
}

export async function getRunWithReply(
  db: Db,
  runId: string,
): Promise<{ run: Run; reply: Message | null } | undefined> {
  const run = await getRun(db, runId);
  if (!run) return undefined;
  const reply = run.replyMessageId ? ((await getMessage(db, run.replyMessageId)) ?? null) : null;
  return { run, reply };
}

export async function startRunAttempt(db: Db, runId: string, now: Date): Promise<Run | null> {
  const [run] = await statements(db).startAttempt.execute({ id: runId, now: now.toISOString() });
  return run ?? null;
}

export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: RunError,
): Promise<void> {
  await statements(db).retry.execute({ id: runId, attempts, error: JSON.stringify(error) });
}

/** See `Store.finishRun`, and `insertRunRequest` for why the thread row is locked first. */
export function finishRun(db: Db, input: RunFinish): Promise<OutboxRow | null> {
  const { runId, reply } = input;
  const now = input.now.toISOString();
  const json = (value: unknown) => (value == null ? null : JSON.stringify(value));
  return db.transaction(async (tx) => {
    // The run and its thread, both locked (see insertRunRequest for why the thread).
    const [run] = await tx.execute<{ status: string; thread_id: string; seq: number }>(sql`
      select r.status, r.thread_id, r.seq from runs r join threads t on t.id = r.thread_id
      where r.id = ${runId} for update`);
    if (!run || run.status === 'completed' || run.status === 'failed') return null;
    const storeReply = reply
      ? sql`
        stored_reply as (
          insert into messages (id, thread_id, run_id, role, content, seq, created_at)
          values (${reply.id}, ${run.thread_id}, ${runId}, 'assistant', ${reply.content},
                  ${run.seq + 1}, ${now}::timestamptz)
        ),
        counted as (
          update threads set message_count = message_count + 1, updated_at = ${now}::timestamptz
          where id = ${run.thread_id}
        ),`
      : sql``;
    // One statement writes the end of the run, finds the thread's next unfinished run and, if
    // that run's announcement is still in the outbox, hands it the job (Store.finishRun).
    const [next] = await tx.execute<{ id: string | null; handed: boolean }>(sql`
      with ${storeReply}
      finished as (
        update runs set status = ${reply ? 'completed' : 'failed'}, attempts = ${input.attempts},
          error = ${json(input.error)}::jsonb, usage = ${json(input.usage)}::jsonb,
          reply_message_id = ${reply?.id ?? null}, finished_at = ${now}::timestamptz
        where id = ${runId}
      ),
      next_run as (
        select id from runs
        where thread_id = ${run.thread_id} and status in ('queued', 'running') and id <> ${runId}
        order by seq limit 1
      ),
      handed as (
        update outbox set enqueue_run_id = run_id
        where run_id = (select id from next_run) and type = 'agent.run.requested'
          and delivered_at is null
        returning id
      )
      select (select id from next_run) as id, exists (select 1 from handed) as handed`);
    return insertOutbox(tx, input.event, next?.handed ? null : (next?.id ?? null), input.now);
  });
}

export async function listThreadHeads(db: Db, limit: number): Promise<Run[]> {
  const earlier = alias(runs, 'earlier');
  return db
    .select()
    .from(runs)
    .where(
      and(
        inArray(runs.status, ACTIVE),
        notExists(
          db
            .select({ one: sql`1` })
            .from(earlier)
            .where(
              and(
                eq(earlier.threadId, runs.threadId),
                inArray(earlier.status, ACTIVE),
                lt(earlier.seq, runs.seq),
              ),
            ),
        ),
      ),
    )
    .orderBy(asc(runs.createdAt))
    .limit(limit);
}

/**
 * See `Store.claimPendingOutbox`. SKIP LOCKED lets relays in several processes claim at the
 * same moment without waiting on each other: each takes rows the others have not locked.
 */
export async function claimPendingOutbox(
  db: Db,
  createdBefore: Date,
  limit: number,
  leaseMs: number,
): Promise<OutboxRow[]> {
  const now = new Date();
  const claimable = db
    .select({ id: outbox.id })
    .from(outbox)
    .where(
      and(
        isNull(outbox.deliveredAt),
        lt(outbox.createdAt, createdBefore),
        or(isNull(outbox.claimedUntil), lt(outbox.claimedUntil, now)),
      ),
    )
    .orderBy(asc(outbox.id))
    .limit(limit)
    .for('update', { skipLocked: true });
  const rows = await db
    .update(outbox)
    .set({ claimedUntil: new Date(now.getTime() + leaseMs) })
    .where(inArray(outbox.id, claimable))
    .returning();
  return rows.sort((a, b) => a.id - b.id);
}

export async function markOutboxDelivered(db: Db, ids: number[]): Promise<DeliveredOutboxRow[]> {
  if (ids.length === 0) return [];
  return statements(db).markDelivered.execute({ now: new Date().toISOString(), ids });
}

export async function getThread(db: Db, threadId: string): Promise<Thread | undefined> {
  if (!storable(threadId)) return undefined;
  const [thread] = await statements(db).getThread.execute({ id: threadId });
  return thread;
}

export async function saveSummary(
  db: Db,
  threadId: string,
  summary: { text: string; throughMessageId: string; throughSeq: number },
): Promise<void> {
  await statements(db).saveSummary.execute({ threadId, ...summary });
}

export async function getThreadMemory(
  db: Db,
  threadId: string,
  throughSeq: number,
  count: number,
): Promise<ThreadMemory | undefined> {
  const rows = await statements(db).memory.execute({ threadId, throughSeq, count });
  const first = rows[0];
  if (!first) return undefined;
  const recent: ThreadMemory['recent'] = [];
  for (const row of rows.reverse()) {
    if (row.id !== null && row.seq !== null && row.role !== null && row.content !== null) {
      recent.push({ id: row.id, seq: row.seq, role: row.role, content: row.content });
    }
  }
  return { summary: first.summary, summaryThroughSeq: first.summaryThroughSeq, recent };
}

export async function getMessage(db: Db, messageId: string): Promise<Message | undefined> {
  if (!storable(messageId)) return undefined;
  const [message] = await statements(db).getMessage.execute({ id: messageId });
  return message;
}

export async function listThreadMessages(
  db: Db,
  threadId: string,
  opts: { limit: number; beforeSeq?: number },
): Promise<{ messages: Message[]; hasMore: boolean }> {
  const where =
    opts.beforeSeq === undefined
      ? eq(messages.threadId, threadId)
      : and(eq(messages.threadId, threadId), lt(messages.seq, opts.beforeSeq));
  const rows = await db
    .select()
    .from(messages)
    .where(where)
    .orderBy(desc(messages.seq))
    .limit(opts.limit + 1);
  const hasMore = rows.length > opts.limit;
  return { messages: rows.slice(0, opts.limit).reverse(), hasMore };
}

export async function listMessagesBetween(
  db: Db,
  threadId: string,
  afterSeq: number,
  beforeSeq: number,
): Promise<Message[]> {
  return statements(db).between.execute({ threadId, afterSeq, beforeSeq });
}

export async function purgeIdempotencyKeys(db: Db, before: Date): Promise<number> {
  const purged = await db
    .delete(idempotencyKeys)
    .where(lt(idempotencyKeys.createdAt, before))
    .returning({ key: idempotencyKeys.key });
  return purged.length;
}
