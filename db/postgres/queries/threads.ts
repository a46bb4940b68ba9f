import { and, desc, eq, lte, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { ThreadMemory } from '../../store';
import type { Db } from '../database';
import { messages, type Thread, threads } from '../schema';
import { storable } from '../storable';

const p = sql.placeholder;
/** A run's reads and writes of its thread, run for every run (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'threads', (db) => ({
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
      .prepare('thread_memory'),
  }));

export async function getThread(db: Db, threadId: string): Promise<Thread | undefined> {
  if (!storable(threadId)) return undefined;
  const [thread] = await statements(db).getThread.execute({ id: threadId });
  return thread;
}

/**
 * Stores a summary together with the last message it covers (id and conversation slot). Once a
 * thread is longer than the window this runs on every run, so it is prepared once.
 */
export async function saveSummary(
  db: Db,
  threadId: string,
  summary: { text: string; throughMessageId: string; throughSeq: number },
): Promise<void> {
  const q = statements(db);
  await q.saveSummary.execute({ threadId, ...summary });
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
  return { summary: first.summary, summaryThroughSeq: first.summaryThroughSeq, recent };
}
