import { and, desc, eq, lte, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { Event, ThreadDetails, ThreadMemory } from '../../store';
import type { TitleSource } from '../../types';
import { clientOf, type Db, type Tx } from '../database';
import { commitWrite } from '../group-commit';
import { messages, type OutboxRow, type Thread, threadMetadata, threads } from '../schema';
import { storable } from '../storable';
import { insertOutbox } from './outbox';
import { readThreadDetails } from './thread-list';
import { webhooksOf } from './webhooks';

const p = sql.placeholder;
/** A run's reads and writes of its thread, run for every run (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'threads', (db) => ({
    getThread: db
      .select()
      .from(threads)
      .where(eq(threads.id, p('id')))
      .prepare('get_thread'),
    memory: (() => {
      // The window as a lateral subquery, so its limit walks the newest messages backwards
      // down messages_thread_seq_position and stops: a plain join reads every message of the
      // thread up to throughSeq and sorts them, which grows with the thread.
      const recent = db
        .select()
        .from(messages)
        .where(and(eq(messages.threadId, threads.id), lte(messages.seq, p('throughSeq'))))
        .orderBy(desc(messages.seq), desc(messages.position))
        .limit(p('count'))
        .as('recent');
      return db
        .select({
          summary: threads.summary,
          summaryTokens: threads.summaryTokens,
          summaryThroughSeq: threads.summaryThroughSeq,
          // The subquery's columns, as a message (null where the thread has none); a column
          // added to messages and missing here fails to compile where `recent` is filled.
          message: {
            id: recent.id,
            threadId: recent.threadId,
            runId: recent.runId,
            role: recent.role,
            content: recent.content,
            seq: recent.seq,
            position: recent.position,
            toolCalls: recent.toolCalls,
            toolCallId: recent.toolCallId,
            name: recent.name,
            isError: recent.isError,
            tokens: recent.tokens,
            createdAt: recent.createdAt,
          },
        })
        .from(threads)
        .leftJoinLateral(recent, sql`true`)
        .where(eq(threads.id, p('threadId')))
        .orderBy(desc(recent.seq), desc(recent.position))
        .prepare('thread_memory');
    })(),
  }));

export async function getThread(db: Db, threadId: string): Promise<Thread | undefined> {
  if (!storable(threadId)) return undefined;
  const [thread] = await statements(db).getThread.execute({ id: threadId });
  return thread;
}

/**
 * See `Store.createThread`, in one transaction. The insert's own conflict tells a taken id (a
 * message that created the thread first, committed or not: the insert waits for it).
 */
export async function createThread(
  db: Db,
  input: { threadId: string; metadata: Record<string, string>; now: Date },
): Promise<{ kind: 'created'; thread: ThreadDetails } | { kind: 'exists' }> {
  const { threadId, metadata } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx) => {
    const created = await tx.execute(sql`
      insert into threads (id, created_at, updated_at, message_count, next_seq, metadata)
      values (${threadId}, ${now}::timestamptz, ${now}::timestamptz, 0, 0,
              ${JSON.stringify(metadata)}::text::jsonb)
      on conflict do nothing
      returning id`);
    if (created.length === 0) return { kind: 'exists' as const };
    await insertMetadataRows(tx, threadId, metadata);
    return {
      kind: 'created' as const,
      thread: (await readThreadDetails(tx, threadId)) as ThreadDetails,
    };
  });
}

/**
 * See `Store.updateThread`: the row (locked by its update) and, with new metadata, its index
 * rows replaced whole, in one transaction.
 */
export async function updateThread(
  db: Db,
  input: { threadId: string; metadata?: Record<string, string>; title?: string; now: Date },
): Promise<ThreadDetails | undefined> {
  const { threadId, metadata } = input;
  if (!storable(threadId)) return undefined;
  const json = metadata ? JSON.stringify(metadata) : null;
  const title = input.title ?? null;
  return db.transaction(async (tx) => {
    const updated = await tx.execute(sql`
      update threads set metadata = coalesce(${json}::text::jsonb, metadata),
        title = coalesce(${title}::text, title),
        title_source = case when ${title}::text is null then title_source else 'user' end,
        updated_at = ${input.now.toISOString()}::timestamptz
      where id = ${threadId}
      returning id`);
    if (updated.length === 0) return undefined;
    if (metadata) {
      await tx.delete(threadMetadata).where(eq(threadMetadata.threadId, threadId));
      await insertMetadataRows(tx, threadId, metadata);
    }
    return readThreadDetails(tx, threadId);
  });
}

/** The index rows of a thread's metadata: one multi-row insert. */
async function insertMetadataRows(tx: Tx, threadId: string, metadata: Record<string, string>) {
  const rows = Object.entries(metadata).map(([key, value]) => ({ threadId, key, value }));
  if (rows.length > 0) await tx.insert(threadMetadata).values(rows);
}

/**
 * Stores a summary together with the last message it covers (id and conversation slot). Once a
 * thread is longer than the window this runs on every run, so it is prepared once.
 */
const SAVE_SUMMARY = `
  update threads set summary = $2, summary_through_message_id = $3,
    summary_through_seq = $4::integer, summary_tokens = $5::integer
  where id = $1`;

export async function saveSummary(
  db: Db,
  threadId: string,
  summary: { text: string; throughMessageId: string; throughSeq: number; tokens: number },
): Promise<void> {
  // A unit of the group commit: its own statement would be a commit of its own.
  await commitWrite(clientOf(db), {
    threadId,
    run: (conn) =>
      conn.query(SAVE_SUMMARY, [
        threadId,
        summary.text,
        summary.throughMessageId,
        summary.throughSeq,
        summary.tokens,
      ]),
  });
}

/**
 * See `Store.saveTitle`: the title and its event's row in one transaction. The condition (a
 * model title only where there is none) is the update's own: a concurrent title's update holds
 * the thread's row lock, and this one, once it gets the lock, checks the condition again against
 * that title.
 */
export async function saveTitle(
  db: Db,
  input: { threadId: string; title: string; source: TitleSource; now: Date; event: Event },
): Promise<{ row: OutboxRow } | null> {
  if (!storable(input.threadId)) return null;
  const { threadId, title, source } = input;
  const now = input.now.toISOString();
  return db.transaction(async (tx) => {
    const saved = await tx.execute(sql`
      update threads set title = ${title}, title_source = ${source},
        updated_at = ${now}::timestamptz
      where id = ${threadId} and (${source} = 'user' or title is null)
      returning id`);
    if (saved.length === 0) return null;
    return { row: await insertOutbox(tx, input.event, null, input.now, webhooksOf(db)) };
  });
}

/**
 * The summary and the recent window of a thread in one statement, run for every run: one
 * statement instead of two. The window's rows are whole messages (a step's tool calls and
 * results are part of the prompt). Undefined when the thread does not exist.
 */
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
  // Newest first from the query; the prompt wants them oldest first.
  for (const row of rows.reverse()) {
    if (row.message) recent.push(row.message);
  }
  return {
    summary: first.summary,
    summaryTokens: first.summaryTokens,
    summaryThroughSeq: first.summaryThroughSeq,
    recent,
  };
}
