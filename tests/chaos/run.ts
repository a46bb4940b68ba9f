/**
 * `bun run chaos`: 1000 messages over 50 threads while the worker is SIGKILLed every few
 * seconds, Redis restarts once, and the model fails 20 % of calls (5xx), times out 5 % and
 * rate-limits 5 %. Every run's end is also sent as a webhook to a receiver that answers 500 to
 * one first attempt in five. Ends with one table: nothing lost (no event, no webhook), nothing
 * doubled, no 5xx is the goal.
 * Standalone (not part of `bun run test`); real processes, a private Redis, a fake model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type SQL, sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import type { Run } from '../../db/types';
import { startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { type ServerProcess, spawnServer } from '../../harness/processes';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { newWebhookSecret, startWebhookReceiver } from '../../harness/webhook-receiver';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    threads: { type: 'string', default: '50' },
    'kill-every-ms': { type: 'string', default: '3000' },
    seed: { type: 'string', default: '7' },
    /** The store: a SQLite file (the default), or a new database on TEST_POSTGRES_URL. */
    db: { type: 'string', default: 'sqlite' },
  },
});
if (values.db !== 'sqlite' && values.db !== 'postgres') {
  console.error(`--db must be sqlite or postgres, got "${values.db}"`);
  process.exit(2);
}
const MESSAGES = Number(values.messages);
const THREADS = Number(values.threads);
const KILL_EVERY_MS = Number(values['kill-every-ms']);
const SEED = Number(values.seed);
const SETTLE_TIMEOUT_MS = 10 * 60_000;

const started = Date.now();
const log = (line: string) =>
  console.log(`[chaos ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);

const dir = mkdtempSync(join(tmpdir(), 'agent-run-chaos-'));
const database = await createTestDatabase(dir, values.db);
const redis = await PrivateRedis.start({ persist: true });
const llm = await startFakeLlm({ quiet: true });
llm.setChaos({ seed: SEED, fail5xx: 0.2, stall: 0.05, rateLimit: 0.05 });
const webhookSecret = newWebhookSecret();
// One first attempt in five fails, by a hash of its id: the retries must make up for them.
const receiver = await startWebhookReceiver({
  secret: webhookSecret,
  answer: (r) => ({
    status: r.attempt === 1 && Bun.hash(r.webhookId + SEED) % 5n === 0n ? 500 : 204,
  }),
});
const streamKey = 'chaos_events';
const env = {
  DATABASE_URL: database.url,
  REDIS_URL: redis.url,
  REDIS_STREAM_KEY: streamKey,
  OPENAI_BASE_URL: llm.url,
  ADMIN_PASSWORD: 'chaos',
  LLM_TIMEOUT_MS: '2000',
  RUN_BACKOFF_MS: '200',
  RUN_LOCK_MS: '2000',
  RUN_STALLED_CHECK_MS: '1000',
  RUN_STALE_MS: '5000',
  WORKER_CONCURRENCY: '16',
  LOG_LEVEL: 'warn',
  WEBHOOK_URL: `${receiver.url}/hooks`,
  WEBHOOK_SECRET: webhookSecret,
  WEBHOOK_EVENTS: 'agent.run.completed,agent.run.failed',
  WEBHOOK_RETRY_SCHEDULE_MS: '200',
  WEBHOOK_MAX_ATTEMPTS: '100',
};
log(`seed ${SEED}; redis ${redis.url}; model ${llm.url}; db ${env.DATABASE_URL}`);

const api = await spawnServer('api', env);
let worker: ServerProcess = await spawnServer('worker', env);
let kills = 0;
let killing = true;

const killer = (async () => {
  while (killing) {
    await Bun.sleep(KILL_EVERY_MS);
    if (!killing) break;
    await worker.kill('SIGKILL');
    kills += 1;
    worker = await spawnServer('worker', env);
  }
})();

// Send: 1000 messages, 50 threads, 20 at a time. Redis restarts once, 40 % of the way in.
const accepted: string[] = [];
let serverErrors = 0;
let otherAnswers = 0;
let next = 0;
let redisRestarted = false;
const sender = async () => {
  while (next < MESSAGES) {
    const i = next++;
    if (!redisRestarted && i >= MESSAGES * 0.4) {
      redisRestarted = true;
      log('restarting Redis');
      void (async () => {
        await redis.down();
        await Bun.sleep(1000);
        await redis.up();
        log('Redis is back');
      })();
    }
    const response = await fetch(`${api.baseUrl}/api/chat/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: `message ${i}`, threadId: `chaos-${i % THREADS}` }),
    });
    if (response.status >= 500) serverErrors += 1;
    if (response.status === 202)
      accepted.push(((await response.json()) as { runId: string }).runId);
    else otherAnswers += 1;
  }
};
await Promise.all(Array.from({ length: 20 }, sender));
log(`sent ${MESSAGES}: ${accepted.length} accepted, ${serverErrors} 5xx`);

// Keep killing the worker until every accepted run is terminal in the database (or give up).
const db = await openSql(env.DATABASE_URL);
const count = async (query: SQL) => Number((await db.select(query))[0]?.n ?? 0);
const pending = () =>
  count(sql`select count(*) as n from runs where status in ('queued', 'running')`);
const deadline = Date.now() + SETTLE_TIMEOUT_MS;
let left = await pending();
while (left > 0 && Date.now() < deadline) {
  await Bun.sleep(1000);
  const now = await pending();
  if (now !== left) log(`${now} runs still unfinished`);
  left = now;
}
killing = false;
await killer;
// Let the last terminal events reach the stream.
await Bun.sleep(2000);

// Judge by what a consumer of the stream sees.
const reader = new Redis(redis.url);
const terminal = new Map<string, Set<string>>();
let redelivered = 0;
let cursor = '-';
for (;;) {
  const page = await reader.xrange(streamKey, cursor, '+', 'COUNT', 5000);
  for (const [id, fields] of page) {
    const entry: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
    if (entry.type === 'agent.run.completed' || entry.type === 'agent.run.failed') {
      const ids = terminal.get(entry.runId as string) ?? new Set<string>();
      if (ids.has(entry.eventId as string)) redelivered += 1;
      ids.add(entry.eventId as string);
      terminal.set(entry.runId as string, ids);
    }
    cursor = `(${id}`;
  }
  if (page.length < 5000) break;
}
reader.disconnect();

// Every run's end as a webhook: its delivery delivered, and a verified 2xx request at the
// receiver (the last process standing sends what the killed ones left).
const undelivered = () =>
  count(sql`select count(*) as n from webhook_deliveries where status <> 'delivered'`);
const webhookDeadline = Date.now() + 60_000;
while ((await undelivered()) > 0 && Date.now() < webhookDeadline) await Bun.sleep(500);
const verifiedIds = new Set(receiver.received.filter((r) => r.verified).map((r) => r.webhookId));
const unverified = receiver.received.filter((r) => !r.verified).length;
const webhookLost = [...terminal.values()].filter(
  (ids) => ![...ids].some((id) => verifiedIds.has(id)),
).length;
const webhookRequests = receiver.received.length;

const statuses = Object.fromEntries(
  (await db.select(sql`select status, count(*) as n from runs group by status`)).map((r) => [
    r.status,
    Number(r.n),
  ]),
);
const duplicateReplies = await count(
  sql`select count(*) as n from (select run_id from messages where role = 'assistant'
      group by run_id having count(*) > 1) as dups`,
);
const failedBy: Record<string, number> = {};
for (const row of await db.select(sql`select error from runs where status = 'failed'`)) {
  // JSON text on SQLite, already parsed on PostgreSQL.
  const error = (typeof row.error === 'string' ? JSON.parse(row.error) : row.error) as Run['error'];
  const code = error?.code ?? 'unknown';
  failedBy[code] = (failedBy[code] ?? 0) + 1;
}
const lost = accepted.filter((runId) => !terminal.has(runId)).length;
const duplicateTerminal = [...terminal.values()].filter((ids) => ids.size > 1).length;
const wallS = ((Date.now() - started) / 1000).toFixed(1);

const rows: [string, string | number][] = [
  ['accepted (202)', accepted.length],
  ['completed', statuses.completed ?? 0],
  ['failed', statuses.failed ?? 0],
  ['lost (accepted, no terminal event)', lost],
  ['duplicate replies', duplicateReplies],
  ['duplicate terminal events', duplicateTerminal],
  ['runs whose end reached no webhook', webhookLost],
  ['webhook requests that failed verification', unverified],
  ['5xx answers', serverErrors],
  ['wall time', `${wallS} s`],
];
console.log(
  `\nchaos: ${MESSAGES} messages / ${THREADS} threads, worker SIGKILLed ${kills}×, Redis restarted once,`,
);
console.log('model: 20 % 5xx, 5 % timeouts, 5 % rate limits\n');
console.log('| figure | value |\n| --- | --- |');
for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
console.log(
  `\n(also: ${redelivered} re-deliveries of an already seen eventId, which consumers de-duplicate; ` +
    `${otherAnswers} non-202 answers; ${llm.requests.length} model calls; ` +
    `${webhookRequests} webhook requests for ${verifiedIds.size} events; failed by code: ` +
    `${JSON.stringify(failedBy)})`,
);

await db.close();
await api.kill('SIGTERM');
await worker.kill('SIGTERM');
await llm.stop();
receiver.close();
await redis.stop();
await database.drop();
rmSync(dir, { recursive: true, force: true });
process.exit(
  lost === 0 &&
    duplicateReplies === 0 &&
    duplicateTerminal === 0 &&
    serverErrors === 0 &&
    webhookLost === 0 &&
    unverified === 0
    ? 0
    : 1,
);
