import { and, desc, eq, lte, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { Event, ThreadDetails, ThreadMemory } from '../../store';
import type { TitleSource } from '../../types';
import type { Db } from '../database';
import { commitWrite } from '../group-commit';
import { messages, type OutboxRow, type Thread, threadMetadata, threads } from '../schema';
import { insertOutboxStatement } from './outbox';
import { readThreadDetails } from './thread-list';

const p = sql.placeholder;
/** A run's reads and writes of its thread, run for every run (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'threads', (db) => ({
    getThread: db
      .select()
      .from(threads)
      .where(eq(threads.id, p('id')))
      .prepare(),
    saveSummary: db
      .update(threads)
      .set({
        summary: sql`${p('text')}`,
        summaryThroughMessageId: sql`${p('throughMessageId')}`,
        summaryThroughSeq: sql`${p('throughSeq')}`,
        summaryTokens: sql`${p('tokens')}`,
      })
      .where(eq(threads.id, p('threadId')))
      .prepare(),
    // A model's title only where there is none; a user's always.
    saveTitle: db
      .update(threads)
      .set({
        title: sql`${p('title')}`,
        titleSource: sql`${p('source')}`,
        updatedAt: sql`${p('now')}`,
      })
      .where(
        and(
          eq(threads.id, p('threadId')),
          sql`(${p('source')} = 'user' or ${threads.title} is null)`,
        ),
      )
      .returning({ id: threads.id })
      .prepare(),
    memory: db
      .select({
        summary: threads.summary,
        summaryTokens: threads.summaryTokens,
        summaryThroughSeq: threads.summaryThroughSeq,
        message: messages,
      })
      .from(threads)
      .leftJoin(
        messages,
        and(eq(messages.threadId, threads.id), lte(messages.seq, p('throughSeq'))),
      )
      .where(eq(threads.id, p('threadId')))
      .orderBy(desc(messages.seq), desc(messages.position))
      .limit(p('count'))
      .prepare(),
    // The json column takes JSON text through sql``, as the driver stores it (see steps.ts).
    createThread: db
      .insert(threads)
      .values({
        id: p('threadId'),
        createdAt: p('now'),
        updatedAt: p('now'),
        messageCount: 0,
        nextSeq: 0,
        metadata: sql`${p('metadata')}`,
      })
      .prepare(),
    // Absent metadata and title (null) leave the thread's as they are; a title given is a user's.
    updateThread: db
      .update(threads)
      .set({
        metadata: sql`coalesce(${p('metadata')}, ${threads.metadata})`,
        title: sql`coalesce(${p('title')}, ${threads.title})`,
        titleSource: sql`case when ${p('title')} is null then ${threads.titleSource} else 'user' end`,
        updatedAt: sql`${p('now')}`,
      })
      .where(eq(threads.id, p('threadId')))
      .returning({ id: threads.id })
      .prepare(),
    insertMetadata: db
      .insert(threadMetadata)
      .values({ threadId: p('threadId'), key: p('key'), value: p('value') })
      .prepare(),
    deleteMetadata: db
      .delete(threadMetadata)
      .where(eq(threadMetadata.threadId, p('threadId')))
      .prepare(),
    insertOutbox: insertOutboxStatement(db),
  }));

export async function getThread(db: Db, threadId: string): Promise<Thread | undefined> {
  return statements(db).getThread.get({ id: threadId });
}

/**
 * See `Store.createThread`: one unit of the turn's group commit, so between the check for the id
 * and the insert no other writer (a message creating the same thread) can come in.
 */
export async function createThread(
  db: Db,
  input: { threadId: string; metadata: Record<string, string>; now: Date },
): Promise<{ kind: 'created'; thread: ThreadDetails } | { kind: 'exists' }> {
  const q = statements(db);
  const { threadId, metadata, now } = input;
  return commitWrite(db, () => {
    if (q.getThread.get({ id: threadId })) return { kind: 'exists' as const };
    q.createThread.run({ threadId, now, metadata: JSON.stringify(metadata) });
    insertMetadataRows(q, threadId, metadata);
    return { kind: 'created' as const, thread: readThreadDetails(db, threadId) as ThreadDetails };
  });
}

/**
 * See `Store.updateThread`: the row and, with new metadata, its index rows replaced whole, in
 * one unit of the turn's group commit.
 */
export async function updateThread(
  db: Db,
  input: { threadId: string; metadata?: Record<string, string>; title?: string; now: Date },
): Promise<ThreadDetails | undefined> {
  const q = statements(db);
  const { threadId, metadata } = input;
  return commitWrite(db, () => {
    const updated = q.updateThread.get({
      threadId,
      metadata: metadata ? JSON.stringify(metadata) : null,
      title: input.title ?? null,
      now: input.now.getTime(),
    });
    if (!updated) return undefined;
    if (metadata) {
      q.deleteMetadata.run({ threadId });
      insertMetadataRows(q, threadId, metadata);
    }
    return readThreadDetails(db, threadId);
  });
}

function insertMetadataRows(
  q: ReturnType<typeof statements>,
  threadId: string,
  metadata: Record<string, string>,
) {
  for (const [key, value] of Object.entries(metadata))
    q.insertMetadata.run({ threadId, key, value });
}

/**
 * Stores a summary together with the last message it covers (id and conversation slot). Once a
 * thread is longer than the window this runs on every run, so it is prepared once and joins the
 * turn's group commit.
 */
export async function saveSummary(
  db: Db,
  threadId: string,
  summary: { text: string; throughMessageId: string; throughSeq: number; tokens: number },
): Promise<void> {
  const q = statements(db);
  await commitWrite(db, () => q.saveSummary.run({ threadId, ...summary }));
}

/**
 * See `Store.saveTitle`: the title and its event's row, one unit of the turn's group commit.
 * The condition (a model title only where there is none) is the update's own, so no other
 * writer comes between the check and the write.
 */
export async function saveTitle(
  db: Db,
  input: { threadId: string; title: string; source: TitleSource; now: Date; event: Event },
): Promise<{ row: OutboxRow } | null> {
  const q = statements(db);
  const { threadId, title, source, now } = input;
  return commitWrite(db, () => {
    const saved = q.saveTitle.get({ threadId, title, source, now: now.getTime() });
    if (!saved) return null;
    const row = q.insertOutbox.get({ ...input.event, enqueueRunId: null, now }) as OutboxRow;
    return { row };
  });
}

/**
 * The summary and the recent window of a thread in one statement, run for every run: one
 * statement instead of two. The window's rows are whole messages (a step's tool calls and
 * results are part of the prompt), so drizzle maps them: their json and boolean columns need
 * it. Undefined when the thread does not exist.
 */
export async function getThreadMemory(
  db: Db,
  threadId: string,
  throughSeq: number,
  count: number,
): Promise<ThreadMemory | undefined> {
  const rows = statements(db).memory.all({ threadId, throughSeq, count });
  const first = rows[0];
  if (!first) return undefined;
  const recent: ThreadMemory['recent'] = [];
  // Newest first from the query; the prompt wants them oldest first.
  for (let i = rows.length - 1; i >= 0; i--) {
    const message = rows[i]?.message;
    if (message) recent.push(message);
  }
  return {
    summary: first.summary,
    summaryTokens: first.summaryTokens,
    summaryThroughSeq: first.summaryThroughSeq,
    recent,
  };
}
