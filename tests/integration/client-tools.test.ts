import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { createConsumer } from '../../src/roles';
import { startTestApp, type TestApp } from '../support/app';
import { addStreamRequest } from '../support/producer';
import { redisTestsEnabled } from '../support/redis';
import { rowCounts } from '../support/rows';
import { writeToolsFile } from '../support/tools-file';

const location = {
  name: 'get_location',
  description: "The user's location",
  parameters: { type: 'object', properties: { precise: { type: 'boolean' } } },
};

const jsonColumn = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);

describe.skipIf(!redisTestsEnabled())('clientTools on a message', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, env: { TOOLS_FILE: writeToolsFile() } });
  });
  afterAll(() => t.close());

  test('declared tools are stored on the run; the view names them', async () => {
    const other = { name: 'pick_file', parameters: { type: 'object' } };
    const { status, body } = await t.post({
      content: 'where am I?',
      clientTools: [location, other],
    });
    expect(status).toBe(202);
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({
      status: 'queued',
      clientTools: ['get_location', 'pick_file'],
      pendingAction: null,
    });
    const [row] = await t.sql.select(
      sql`select client_tools from runs where id = ${body.runId as string}`,
    );
    expect(jsonColumn(row?.client_tools)).toEqual([location, other]);
  });

  test('none declared (absent, null or []): an empty list', async () => {
    for (const clientTools of [undefined, null, []]) {
      const { body } = await t.post({ content: 'no client tools', clientTools });
      expect((await t.get(`/api/chat/runs/${body.runId}`)).body.clientTools).toEqual([]);
    }
  });

  test.each([
    ['a server tool’s name', [{ ...location, name: 'weather' }], /"weather".*server tool/],
    ['a name twice', [location, location], /"get_location" is declared twice/],
    [
      'parameters that are not an object schema',
      [{ ...location, parameters: { type: 'string' } }],
      /"type": "object"/,
    ],
    [
      'parameters that do not compile',
      [{ ...location, parameters: { type: 'object', properties: 5 } }],
      /not a valid JSON Schema/,
    ],
    // Elysia reports a schema miss inside the nullable list at the list itself.
    ['a bad name', [{ ...location, name: 'has space' }], /clientTools/],
    ['a description over 1024', [{ ...location, description: 'x'.repeat(1025) }], /clientTools/],
    ['an unknown field', [{ ...location, url: 'http://x' }], /./],
    ['no parameters', [{ name: 'bare' }], /clientTools/],
    ['more than 64', Array.from({ length: 65 }, (_, i) => ({ ...location, name: `t${i}` })), /./],
    [
      'a NUL in a schema',
      [{ ...location, parameters: { type: 'object', title: 'a\u0000b' } }],
      /NUL/,
    ],
  ])('%s: 400 invalid_request, nothing stored', async (_name, clientTools, message) => {
    const before = await rowCounts(t.sql);
    const { status, body } = await t.post({ content: 'hello', clientTools });
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toMatch(message);
    expect(await rowCounts(t.sql)).toEqual(before);
  });

  test('idempotency: clientTools are part of the body', async () => {
    const key = { 'idempotency-key': `ct-${Date.now()}` };
    const first = await t.post({ content: 'same', clientTools: [location] }, key);
    const again = await t.post({ content: 'same', clientTools: [location] }, key);
    expect(again.body).toEqual(first.body);
    const other = await t.post(
      { content: 'same', clientTools: [{ ...location, description: 'else' }] },
      key,
    );
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });
});

describe.skipIf(!redisTestsEnabled())('clientTools on a stream request', () => {
  let t: TestApp;
  let producer: Redis;
  let consumer: ReturnType<typeof createConsumer>;
  beforeAll(async () => {
    // The api role and the stream consumer, without the BullMQ worker: runs stay queued.
    t = await startTestApp({ worker: false, env: { TOOLS_FILE: writeToolsFile() } });
    consumer = createConsumer(t.deps);
    await consumer.start();
    producer = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    producer.disconnect();
    await consumer.stop();
    await t.close();
  });

  test('the same rules: a clash is rejected, good tools are stored', async () => {
    await addStreamRequest(producer, t.config.redis.streamKey, 'ct-clash', {
      content: 'hi',
      clientTools: [{ ...location, name: 'weather' }],
    });
    await addStreamRequest(producer, t.config.redis.streamKey, 'ct-good', {
      content: 'hi',
      clientTools: [location],
    });
    const entries = await t.events.waitFor(
      (all) =>
        all.some((e) => e.type === 'agent.run.rejected' && e.requestId === 'ct-clash') &&
        all.some((e) => e.type === 'agent.run.requested' && e.payload.requestId === 'ct-good'),
      'the rejection and the request',
    );
    const rejected = entries.find(
      (e) => e.type === 'agent.run.rejected' && e.requestId === 'ct-clash',
    );
    expect(rejected?.payload.error.code).toBe('invalid_request');
    expect(rejected?.payload.error.message).toMatch(/"weather"/);
    const requested = entries.find((e) => e.payload?.requestId === 'ct-good');
    const run = await t.get(`/api/chat/runs/${requested?.runId}`);
    expect(run.body.clientTools).toEqual(['get_location']);
  });
});
