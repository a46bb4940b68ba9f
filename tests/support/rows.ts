import { sql } from 'drizzle-orm';
import type { SqlReader } from '../../harness/sql';

/** Row counts of every table: "nothing stored" is all zeros. Same SQL on either engine. */
export async function rowCounts(reader: SqlReader) {
  const [row] = await reader.select(sql`select
    (select count(*) from threads) as threads,
    (select count(*) from messages) as messages,
    (select count(*) from runs) as runs,
    (select count(*) from outbox) as outbox,
    (select count(*) from webhook_deliveries) as deliveries`);
  return {
    threads: Number(row?.threads),
    messages: Number(row?.messages),
    runs: Number(row?.runs),
    outbox: Number(row?.outbox),
    deliveries: Number(row?.deliveries),
  };
}

/** A run's outbox rows in order: its event ids and whether each was delivered. */
export async function outboxOfRun(reader: SqlReader, runId: string) {
  const rows = await reader.select(
    sql`select event_id, delivered_at from outbox where run_id = ${runId} order by id`,
  );
  return rows.map((r) => ({ eventId: r.event_id as string, delivered: r.delivered_at != null }));
}

/** The runs of the undelivered outbox rows, oldest first. */
export async function undeliveredRunIds(reader: SqlReader): Promise<string[]> {
  const rows = await reader.select(
    sql`select run_id from outbox where delivered_at is null order by id`,
  );
  return rows.map((r) => r.run_id as string);
}

/** The roles of the messages stored for a run (its user message and any replies). */
export async function messageRolesOfRun(reader: SqlReader, runId: string): Promise<string[]> {
  const rows = await reader.select(sql`select role from messages where run_id = ${runId}`);
  return rows.map((r) => r.role as string).sort();
}

/** Makes a run's outbox rows look `ms` older, as if written before the relay's grace began. */
export async function backdateOutboxOfRun(
  reader: SqlReader,
  runId: string,
  ms: number,
): Promise<void> {
  await reader.select(
    reader.dialect === 'sqlite'
      ? sql`update outbox set created_at = created_at - ${ms} where run_id = ${runId}`
      : sql`update outbox set created_at = created_at - make_interval(secs => ${ms / 1000})
            where run_id = ${runId}`,
  );
}

/**
 * What the database holds of one thread: its row, metadata rows, messages, runs, and its outbox
 * rows by type. A deleted thread leaves only the outbox rows announcing its deletion.
 */
export async function rowsOfThread(reader: SqlReader, threadId: string) {
  const [row] = await reader.select(sql`select
    (select count(*) from threads where id = ${threadId}) as threads,
    (select count(*) from thread_metadata where thread_id = ${threadId}) as metadata,
    (select count(*) from messages where thread_id = ${threadId}) as messages,
    (select count(*) from runs where thread_id = ${threadId}) as runs`);
  const outbox = await reader.select(
    sql`select type from outbox where thread_id = ${threadId} order by id`,
  );
  return {
    threads: Number(row?.threads),
    metadata: Number(row?.metadata),
    messages: Number(row?.messages),
    runs: Number(row?.runs),
    outbox: outbox.map((r) => r.type as string),
  };
}

/** Makes a thread look `ms` older: its `updated_at` moved back (the retention sweep's test). */
export async function backdateThread(reader: SqlReader, threadId: string, ms: number) {
  await reader.select(
    reader.dialect === 'sqlite'
      ? sql`update threads set updated_at = updated_at - ${ms} where id = ${threadId}`
      : sql`update threads set updated_at = updated_at - make_interval(secs => ${ms / 1000})
            where id = ${threadId}`,
  );
}
