import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateRedis } from '../../harness/private-redis';
import { type ServerProcess, spawnServer } from '../../harness/processes';
import { openSql } from '../../harness/sql';
import { createTestDatabase } from '../../harness/test-database';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';

const REQUESTS = 10_000;
const CONCURRENCY = 32;
const SEED = Number(process.env.FUZZ_SEED ?? 20261125);

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from the printed seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick };
}

const ODD = [
  '',
  ' ',
  '\u0000',
  '\u200b\u200b',
  '\u202eevil',
  '\ud800',
  '\udfff lone',
  '💥🔥👩‍👩‍👧‍👦',
  'ｆｕｌｌｗｉｄｔｈ',
  'e\u0301\u0301\u0301',
  '\r\n\t',
  '"quoted"',
  '\\',
  '<script>alert(1)</script>',
  "'; DROP TABLE runs; --",
  '%00%ff',
  'a'.repeat(33_000),
  'thr_aaaaaaaaaaaaaaaaaaaaaaaa',
];

/** Lone surrogates cannot be URI-encoded; send the raw bytes of one instead. */
const encode = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};

type Case = { method: string; path: string; headers: Record<string, string>; body?: string };

function generator(seed: number) {
  const r = prng(seed);
  const str = (): string =>
    r.next() < 0.5
      ? r.pick(ODD)
      : Array.from({ length: r.int(40) }, () => String.fromCharCode(r.int(0xffff))).join('');
  const scalar = (): unknown =>
    r.pick([() => r.int(1e6) - 5e5, () => r.next(), str, () => true, () => false, () => null])();
  const value = (depth = 0): unknown => {
    if (depth > 3 || r.next() < 0.5) return scalar();
    if (r.next() < 0.5) return Array.from({ length: r.int(4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: r.int(4) }, () => [str(), value(depth + 1)]));
  };
  const validBody = () => ({
    content: r.next() < 0.8 ? `hello ${r.int(1000)}` : str(),
    ...(r.next() < 0.4 ? { threadId: r.pick([`t-${r.int(50)}`, str(), null, 7]) } : {}),
    ...(r.next() < 0.3 ? { model: r.pick(['gpt-4o-mini', str(), null, '', ['x']]) } : {}),
  });
  const mutate = (body: Record<string, unknown>) => {
    const copy: Record<string, unknown> = { ...body };
    const op = r.int(5);
    if (op === 0) copy[r.pick(['content', 'threadId', 'model'])] = value();
    if (op === 1) delete copy.content;
    if (op === 2) copy[str()] = value();
    if (op === 3) copy.content = { nested: copy.content };
    return copy;
  };
  const json = { 'content-type': 'application/json' };
  const idHeader = (): Record<string, string> => {
    if (r.next() < 0.7) return {};
    const key = r.pick([`key-${r.int(30)}`, 'k'.repeat(300), 'with space', 'ключ', '']);
    return /^[\x20-\x7e]*$/.test(key) ? { 'idempotency-key': key } : {};
  };

  return (): Case => {
    const kind = r.int(10);
    if (kind <= 3) {
      return {
        method: 'POST',
        path: '/api/chat/messages',
        headers: { ...json, ...idHeader() },
        body: JSON.stringify(r.next() < 0.5 ? validBody() : mutate(validBody())),
      };
    }
    if (kind === 4) {
      return {
        method: 'POST',
        path: '/api/chat/messages',
        headers: json,
        body: JSON.stringify(value()),
      };
    }
    if (kind === 5) {
      const bodies = [
        `{"content":${'['.repeat(5000)}${']'.repeat(5000)}}`,
        JSON.stringify({ content: 'x'.repeat(70_000) }),
        '{"content": "unterminated',
        '\u0000\u0001\u0002',
        '{"content":"a","content":"b"}',
        `{"content":"${'\\u0000'.repeat(100)}"}`,
        '',
      ];
      return { method: 'POST', path: '/api/chat/messages', headers: json, body: r.pick(bodies) };
    }
    if (kind === 6) {
      const type = r.pick([
        'text/plain',
        'application/xml',
        'application/json; charset=latin1',
        'APPLICATION/JSON',
        'multipart/form-data; boundary=x',
        '',
      ]);
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      return {
        method: 'POST',
        path: '/api/chat/messages',
        headers,
        body: JSON.stringify(validBody()),
      };
    }
    if (kind === 7) {
      const id = r.pick([
        str(),
        'thr_x',
        '..%2F..%2Fetc',
        '%E0%A4%A',
        '%',
        'a'.repeat(500),
        `t-${r.int(50)}`,
      ]);
      const encoded = r.next() < 0.5 ? encode(id) : id.replace(/[\s#?/]/g, '');
      const query = r.pick([
        '',
        `?limit=${r.pick(['-1', '0', '1', '200', '201', 'NaN', '1e3', str()])}`,
        `?before=${encode(str())}`,
        '?limit=5&before=msg_nothere',
        '?unknown=1',
      ]);
      const path = r.pick([
        `/api/chat/threads/${encoded}`,
        `/api/chat/threads/${encoded}/messages${query}`,
        `/api/chat/runs/${encoded}`,
      ]);
      return { method: 'GET', path, headers: {} };
    }
    if (kind === 8) {
      return {
        method: r.pick(['PUT', 'DELETE', 'PATCH', 'GET']),
        path: r.pick(['/api/chat/messages', '/api/chat/models', '/api/chat/runs', '/api', '/nope']),
        headers: json,
        body: undefined,
      };
    }
    return {
      method: 'POST',
      path: '/api/chat/messages',
      headers: { ...json, authorization: r.pick(['Bearer', 'Basic !!', 'Bearer x'.repeat(100)]) },
      body: JSON.stringify(validBody()),
    };
  };
}

function isErrorBody(text: string): boolean {
  try {
    return typeof JSON.parse(text).error.code === 'string';
  } catch {
    return false;
  }
}

describe.skipIf(!redisTestsEnabled())(`fuzz: ${REQUESTS} generated requests (seed ${SEED})`, () => {
  let redis: PrivateRedis;
  let server: ServerProcess;
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    console.log(`fuzz seed: ${SEED} (replay with FUZZ_SEED=${SEED})`);
    redis = await PrivateRedis.start();
    dir = mkdtempSync(join(tmpdir(), 'agent-run-fuzz-'));
    database = await createTestDatabase(dir);
    server = await spawnServer('api', {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      HTTP_MAX_BODY_BYTES: '65536',
      ADMIN_PASSWORD: 'fuzz',
    });
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await redis?.stop();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('no 5xx, the process alive, nothing stored for a rejected request', async () => {
    const next = generator(SEED);
    const statuses = new Map<number, number>();
    const serverErrors: string[] = [];
    const badBodies: string[] = [];
    const accepted = new Set<string>();
    const threads = new Set<string>();
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        sent += 1;
        const c = next();
        const response = await fetch(`${server.baseUrl}${c.path}`, {
          method: c.method,
          headers: c.headers,
          body: c.body,
        });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status >= 500) {
          serverErrors.push(`${response.status} ${c.method} ${c.path} ${c.body?.slice(0, 200)}`);
        }
        if (response.status === 202) {
          const body = JSON.parse(text);
          accepted.add(body.runId);
          threads.add(body.threadId);
        } else if (
          c.path.startsWith('/api') &&
          response.status >= 400 &&
          response.status !== 431 && // Bun's own answer to oversized headers, before our code
          !isErrorBody(text)
        ) {
          badBodies.push(
            `${response.status} ${c.method} ${c.path} → ${JSON.stringify(text.slice(0, 100))}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    console.log(`fuzz statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    expect(serverErrors).toEqual([]);
    expect(badBodies.slice(0, 10)).toEqual([]);
    expect(server.proc.exitCode).toBeNull();
    expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
    expect(accepted.size).toBeGreaterThan(100);
    // Exactly what was accepted is stored: one run, one message, one outbox row each.
    const reader = await openSql(database.url);
    try {
      expect(await rowCounts(reader)).toEqual({
        threads: threads.size,
        messages: accepted.size,
        runs: accepted.size,
        outbox: accepted.size,
        deliveries: 0,
      });
    } finally {
      await reader.close();
    }
  }, 180_000);
});
