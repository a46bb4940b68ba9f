import { lt } from 'drizzle-orm';
import type { Db } from '../database';
import { idempotencyKeys } from '../schema';

/** Deletes keys written before `before`; returns how many. */
export async function purgeIdempotencyKeys(db: Db, before: Date): Promise<number> {
  const purged = db
    .delete(idempotencyKeys)
    .where(lt(idempotencyKeys.createdAt, before))
    .returning({ key: idempotencyKeys.key })
    .all();
  return purged.length;
}
