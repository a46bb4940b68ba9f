import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { prepared } from '../../prepared';
import type { Db } from '../database';
import { type Message, messages } from '../schema';

const p = sql.placeholder;
/** Memory's statements, run for every run (see db/prepared.ts). */
const statements = (db: Db) =>
  prepared(db, 'messages', (db) => ({
    // Memory reads the run's user message on every run.
    get: db
      .select()
      .from(messages)
      .where(eq(messages.id, p('id')))
      .prepare(),
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
      .orderBy(asc(messages.seq), asc(messages.position))
      .prepare(),
  }));

export async function getMessage(db: Db, messageId: string): Promise<Message | undefined> {
  return statements(db).get.get({ id: messageId });
}

/**
 * One page of a thread in conversation order (slot, then position): the `limit` messages
 * strictly before the place `before` (or the newest ones), returned oldest first, plus whether
 * older ones exist.
 */
export async function listThreadMessages(
  db: Db,
  threadId: string,
  opts: { limit: number; before?: { seq: number; position: number } },
): Promise<{ messages: Message[]; hasMore: boolean }> {
  const { before } = opts;
  const where =
    before === undefined
      ? eq(messages.threadId, threadId)
      : // seq < s, or seq = s and position < p: as a row value, a range on the index of places.
        and(
          eq(messages.threadId, threadId),
          sql`(${messages.seq}, ${messages.position}) < (${before.seq}, ${before.position})`,
        );
  const rows = db
    .select()
    .from(messages)
    .where(where)
    .orderBy(desc(messages.seq), desc(messages.position))
    .limit(opts.limit + 1)
    .all();
  const hasMore = rows.length > opts.limit;
  return { messages: rows.slice(0, opts.limit).reverse(), hasMore };
}

/** Messages strictly between two slots, in conversation order: what a summary has to fold in. */
export async function listMessagesBetween(
  db: Db,
  threadId: string,
  afterSeq: number,
  beforeSeq: number,
): Promise<Message[]> {
  return statements(db).between.all({ threadId, afterSeq, beforeSeq });
}
