/**
 * `bun run bench:threads [--db sqlite|postgres] [--threads N] [--calls N]`: the thread list at
 * scale. Seeds N threads (default 1 000 000) with metadata straight by SQL (a multi-row
 * INSERT … SELECT: the store has no bulk insert), in a database of its own (a temp SQLite file, or
 * a PostgreSQL database on TEST_POSTGRES_URL, dropped after), then times `Store.listThreads`
 * (pages of 50): the first page, a page half way down (by the cursor), and pages filtered by a
 * rare and by a common metadata value. Each figure is the median of `--calls` calls (default 50).
 * Prints the query plans of the list's two shapes first.
 *
 * Every thread i has metadata { tenant: t<i % 1000>, kind: k<i % 4> }: a tenant matches N/1000
 * threads, a kind N/4. The threads have no runs (busy and lastRunId are index lookups that find
 * nothing). PostgreSQL is ANALYZEd after the seed, as autovacuum would; SQLite is not, as the
 * server never runs ANALYZE.
 */
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { openStore } from '../db/client';
import { sqlitePath } from '../db/path';
import type { ThreadCursor } from '../db/store';
import { createTestDatabase } from '../harness/test-database';

const { values } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    threads: { type: 'string', default: '1000000' },
    calls: { type: 'string', default: '50' },
  },
});
const DB = values.db;
if (DB !== 'sqlite' && DB !== 'postgres') {
  console.error(`--db must be sqlite or postgres, got "${DB}"`);
  process.exit(2);
}
const THREADS = Number(values.threads);
const CALLS = Number(values.calls);
if (!Number.isInteger(THREADS) || THREADS < 2 || !Number.isInteger(CALLS) || CALLS < 1) {
  console.error('--threads must be an integer ≥ 2 and --calls a positive integer');
  process.exit(2);
}
const PAGE = 50;
/** Thread i was last updated at BASE - (THREADS - i) seconds: thread THREADS-1 is the newest. */
const BASE = Date.UTC(2026, 0, 1);
const updatedAt = (i: number) => new Date(BASE - (THREADS - i) * 1000);
const threadId = (i: number) => `thr_${String(i).padStart(8, '0')}`;

const t0 = Date.now();
const progress = (line: string) =>
  console.log(`[threads ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}`);

/** The list's statement as the store sends it (db/<engine>/queries/thread-list.ts), to EXPLAIN. */
const listSql = (dialect: 'sqlite' | 'postgres', filtered: boolean) => {
  const q = (n: number) => (dialect === 'sqlite' ? `?${n}` : `$${n}`);
  const unfinished = `('queued', 'running', 'cancelling', 'requires_action')`;
  return `select "threads"."id", "threads"."metadata",
      exists (select 1 from runs r where r.thread_id = "threads"."id" and r.status in ${unfinished}),
      (select r.id from runs r where r.thread_id = "threads"."id" order by r.seq desc limit 1)
    from "threads"
    ${filtered ? `inner join "thread_metadata" "m" on ("m"."thread_id" = "threads"."id" and "m"."key" = ${q(3)} and "m"."value" = ${q(4)})` : ''}
    where ("threads"."updated_at", "threads"."id") < (${q(1)}, ${q(2)})
    order by "threads"."updated_at" desc, "threads"."id" desc limit ${PAGE + 1}`;
};

async function seedSqlite(url: string): Promise<string[]> {
  const db = new Database(sqlitePath(url), { strict: true });
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA cache_size = -262144');
  const n = THREADS;
  db.transaction(() => {
    db.run(
      `with recursive s(i) as (select 0 union all select i + 1 from s where i < ${n - 1})
       insert into threads (id, created_at, updated_at, message_count, next_seq, metadata)
       select 'thr_' || printf('%08d', i), ${BASE} - (${n} - i) * 1000, ${BASE} - (${n} - i) * 1000,
         0, 0, json_object('tenant', 't' || (i % 1000), 'kind', 'k' || (i % 4))
       from s`,
    );
    db.run(
      `insert into thread_metadata (thread_id, key, value)
       select id, 'tenant', json_extract(metadata, '$.tenant') from threads`,
    );
    db.run(
      `insert into thread_metadata (thread_id, key, value)
       select id, 'kind', json_extract(metadata, '$.kind') from threads`,
    );
  })();
  const plans: string[] = [];
  const cursor = updatedAt(THREADS / 2).getTime();
  for (const filtered of [false, true]) {
    const params = filtered ? [cursor, threadId(THREADS / 2), 'tenant', 't7'] : [cursor, 'x'];
    const rows = db.prepare(`explain query plan ${listSql('sqlite', filtered)}`).all(...params) as {
      detail: string;
    }[];
    plans.push(
      `${filtered ? 'filtered' : 'unfiltered'}:\n  ${rows.map((r) => r.detail).join('\n  ')}`,
    );
  }
  db.close();
  return plans;
}

async function seedPostgres(url: string): Promise<string[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const n = THREADS;
  await sql.unsafe(`
    insert into threads (id, created_at, updated_at, message_count, next_seq, metadata)
    select 'thr_' || lpad(i::text, 8, '0'), t, t, 0, 0,
      jsonb_build_object('tenant', 't' || (i % 1000), 'kind', 'k' || (i % 4))
    from generate_series(0, ${n - 1}) i,
      lateral (select to_timestamp((${BASE} - (${n} - i) * 1000::bigint) / 1000.0) as t) ts`);
  await sql.unsafe(`
    insert into thread_metadata (thread_id, key, value)
    select id, 'tenant', metadata ->> 'tenant' from threads
    union all select id, 'kind', metadata ->> 'kind' from threads`);
  await sql.unsafe('analyze');
  const plans: string[] = [];
  const cursor = updatedAt(THREADS / 2).toISOString();
  for (const filtered of [false, true]) {
    const params = filtered ? [cursor, threadId(THREADS / 2), 'tenant', 't7'] : [cursor, 'x'];
    const rows = await sql.unsafe(`explain (costs off) ${listSql('postgres', filtered)}`, params);
    plans.push(
      `${filtered ? 'filtered' : 'unfiltered'}:\n  ${rows.map((r) => r['QUERY PLAN']).join('\n  ')}`,
    );
  }
  await sql.end();
  return plans;
}

async function median(call: () => Promise<unknown>): Promise<number> {
  await call(); // warm the statement and the cache
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-threads-'));
  const database = await createTestDatabase(dir, DB as 'sqlite' | 'postgres');
  try {
    const store = await openStore(database.url, { poolSize: 4 });
    progress(`seeding ${THREADS.toLocaleString('en')} threads on ${DB}`);
    const plans =
      DB === 'sqlite' ? await seedSqlite(database.url) : await seedPostgres(database.url);
    progress('seeded');
    for (const plan of plans) console.log(plan);
    const half = Math.floor(THREADS / 2);
    const deep: ThreadCursor = { updatedAt: updatedAt(half), id: threadId(half) };
    const figures: [string, () => Promise<{ threads: unknown[] }>][] = [
      ['first page', () => store.listThreads({ limit: PAGE, metadata: {} })],
      [
        'page half way down (cursor)',
        () => store.listThreads({ limit: PAGE, after: deep, metadata: {} }),
      ],
      [
        `filtered, tenant=t7 (${(THREADS / 1000).toLocaleString('en')} match)`,
        () => store.listThreads({ limit: PAGE, metadata: { tenant: 't7' } }),
      ],
      [
        `filtered, kind=k1 (${(THREADS / 4).toLocaleString('en')} match)`,
        () => store.listThreads({ limit: PAGE, metadata: { kind: 'k1' } }),
      ],
      [
        'filtered, tenant=t7 and kind=k3',
        () => store.listThreads({ limit: PAGE, metadata: { tenant: 't7', kind: 'k3' } }),
      ],
    ];
    const rows: string[] = [];
    for (const [name, call] of figures) {
      const got = await call();
      const ms = await median(call);
      rows.push(`| ${name} | ${got.threads.length} | ${ms.toFixed(2)} ms |`);
    }
    console.log(
      `\nlistThreads on ${DB}, ${THREADS.toLocaleString('en')} threads, median of ${CALLS} calls`,
    );
    console.log('| page | threads | median |\n| --- | --- | --- |');
    for (const row of rows) console.log(row);
    await store.close();
  } finally {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
