import { eq, sql } from 'drizzle-orm';
import type { Db } from '../client';
import { type Thread, threads } from '../schema';
import { prepared } from './prepared';

export async function getThread(db: Db, threadId: string): Promise<Thread | undefined> {
  return prepared(db, 'threads', (db) =>
    db
      .select()
      .from(threads)
      .where(eq(threads.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id: threadId });
}

/** Stores a summary together with the last message it covers (id and conversation slot). */
export async function saveSummary(
  db: Db,
  threadId: string,
  summary: { text: string; throughMessageId: string; throughSeq: number },
): Promise<void> {
  db.update(threads)
    .set({
      summary: summary.text,
      summaryThroughMessageId: summary.throughMessageId,
      summaryThroughSeq: summary.throughSeq,
    })
    .where(eq(threads.id, threadId))
    .run();
}
