import { and, asc, eq, isNull, lt } from 'drizzle-orm';
import type { Db } from '../client';
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

export async function markOutboxDelivered(db: Db, id: number): Promise<void> {
  db.update(outbox).set({ deliveredAt: new Date() }).where(eq(outbox.id, id)).run();
}

export async function getOutboxByEventId(db: Db, eventId: string): Promise<OutboxRow | undefined> {
  return db.select().from(outbox).where(eq(outbox.eventId, eventId)).get();
}
