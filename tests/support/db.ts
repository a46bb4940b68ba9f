import { count } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { messages, outbox, runs, threads } from '../../db/schema';

/** Row counts of every table: "nothing stored" is all zeros. */
export async function rowCounts(db: Db) {
  const n = (table: typeof threads | typeof messages | typeof runs | typeof outbox) =>
    db.select({ n: count() }).from(table).get()?.n ?? 0;
  return { threads: n(threads), messages: n(messages), runs: n(runs), outbox: n(outbox) };
}
