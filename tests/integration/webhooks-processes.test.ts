import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { PrivateRedis } from '../../harness/private-redis';
import { postMessage, type ServerProcess, spawnServer } from '../../harness/processes';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { waitForValue } from '../../harness/wait';
import {
  newWebhookSecret,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../../harness/webhook-receiver';
import { redisTestsEnabled } from '../support/redis';

// Real processes take seconds to start and die.
setDefaultTimeout(60_000);

/**
 * Webhook senders as production runs them: `bun src/main.ts` children over one store and a
 * private redis-server, sending to a real receiver on loopback; the test reads the deliveries'
 * rows from the database itself.
 */
describe.skipIf(!redisTestsEnabled())('webhook senders in real processes', () => {
  const secret = newWebhookSecret();
  let redis: PrivateRedis;
  let llm: FakeLlm;
  let receiver: WebhookReceiver;
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let reader: Awaited<ReturnType<typeof openSql>>;
  let env: Record<string, string>;
  const children: ServerProcess[] = [];
  const spawn = async () => {
    const child = await spawnServer('both', env);
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    llm = await startFakeLlm({ quiet: true });
    receiver = await startWebhookReceiver({ secret });
    dir = mkdtempSync(join(tmpdir(), 'agent-run-webhooks-'));
    database = await createTestDatabase(dir);
    reader = await openSql(database.url);
    env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      OPENAI_BASE_URL: llm.url,
      ADMIN_PASSWORD: 'webhooks-test',
      WEBHOOK_URL: `${receiver.url}/hooks`,
      WEBHOOK_SECRET: secret,
      WEBHOOK_RETRY_SCHEDULE_MS: '200',
    };
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await child.kill('SIGKILL');
  });
  afterAll(async () => {
    receiver.close();
    await reader.close();
    await llm.stop();
    await redis.stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const deliveriesOf = async (runIds: string[]) => {
    const rows = await reader.select(sql`
      select run_id, event_id, status, attempts from webhook_deliveries`);
    return rows.filter((row) => runIds.includes(row.run_id as string));
  };
  const postAll = async (baseUrls: string[], count: number, label: string) => {
    const runIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const base = baseUrls[i % baseUrls.length] as string;
      const { status, body } = await postMessage(base, { content: `${label} ${i}` });
      expect(status).toBe(202);
      runIds.push(body.runId);
    }
    return runIds;
  };

  test('a process SIGKILLed with deliveries due loses none: the next one sends them', async () => {
    receiver.answerWith(() => ({ status: 503 }));
    const first = await spawn();
    const runIds = await postAll([first.baseUrl], 10, 'killed');
    // Every run ended and its delivery was tried at least once, and failed: all still due.
    const tried = await waitForValue(
      () => deliveriesOf(runIds),
      (rows) => rows.length === 10 && rows.every((r) => Number(r.attempts) >= 1),
      30_000,
    );
    expect(tried.every((r) => r.status === 'pending')).toBe(true);
    await first.kill('SIGKILL');

    receiver.answerWith(() => ({ status: 200 }));
    await spawn();
    const delivered = await waitForValue(
      () => deliveriesOf(runIds),
      (rows) => rows.every((r) => r.status === 'delivered'),
      30_000,
    );
    expect(delivered.map((r) => r.status)).toEqual(Array(10).fill('delivered'));
    for (const row of delivered) {
      const got = receiver.of(row.event_id as string);
      expect(got.length).toBeGreaterThanOrEqual(2); // a 503 before the kill, a 200 after
      expect(got.every((r) => r.verified && r.event.runId === row.run_id)).toBe(true);
    }
  });

  test('two sender processes never send one delivery at once', async () => {
    // Slow answers: two senders racing for one delivery would overlap on it.
    receiver.answerWith(() => ({ status: 200, delayMs: 300 }));
    const [a, b] = [await spawn(), await spawn()];
    const before = receiver.received.length;
    const runIds = await postAll([a.baseUrl, b.baseUrl], 20, 'two senders');
    const delivered = await waitForValue(
      () => deliveriesOf(runIds),
      (rows) => rows.length === 20 && rows.every((r) => r.status === 'delivered'),
      30_000,
    );
    expect(delivered).toHaveLength(20);
    expect(receiver.maxInFlightPerId).toBe(1);
    // Each delivery was sent once: one request per webhook-id, nothing else.
    const sent = receiver.received.slice(before);
    expect(sent).toHaveLength(20);
    expect(new Set(sent.map((r) => r.webhookId))).toEqual(
      new Set(delivered.map((r) => r.event_id as string)),
    );
  });
});
