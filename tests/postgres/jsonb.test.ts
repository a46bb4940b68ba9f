import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { TEST_DATABASE } from '../../harness/test-database';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

// tests/postgres/ belongs to the PostgreSQL suite, `bun run test:postgres`.
if (TEST_DATABASE !== 'postgres') {
  throw new Error('tests/postgres/ runs on PostgreSQL only: `bun run test:postgres`');
}

const colorTool = {
  name: 'pick_color',
  description: 'Asks the user to pick a color',
  parameters: { type: 'object', properties: { hint: { type: 'string' } } },
};

/**
 * Bun's PostgreSQL client encodes a value for a jsonb parameter itself: handed a JSON text, it
 * stores one JSON string, which reads back as the same text and so passes every round trip
 * through the store. What the database holds shows it: every jsonb the store writes, by its
 * builders and by its own SQL, is an object or an array, for other readers of the database
 * (SQL, reports, a later migration) as much as for the store.
 */
describe.skipIf(!redisTestsEnabled())('jsonb columns hold JSON values, not JSON strings', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('a thread, an idempotent message, a paused and answered run, a cancelled run', async () => {
    const thread = await t.call('/api/chat/threads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { team: 'blue' } }),
    });
    expect(thread.status).toBe(201);
    const threadId = thread.body.id as string;

    const paused = await t.post(
      { content: 'choose [[tool:pick_color {"hint":"warm"}]]', threadId, clientTools: [colorTool] },
      { 'Idempotency-Key': `jsonb-${threadId}` },
    );
    expect(paused.status).toBe(202);
    await t.events.waitFor(
      (all) =>
        all.some((e) => e.runId === paused.body.runId && e.type === 'agent.run.requires_action'),
      'the run to wait for its client',
    );
    const [call] = (await t.get(`/api/chat/runs/${paused.body.runId}`)).body.pendingAction
      .toolCalls;
    const answered = await t.call(`/api/chat/runs/${paused.body.runId}/tool-outputs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outputs: [{ toolCallId: call.toolCallId, output: 'red' }] }),
    });
    expect(answered.status).toBe(202);
    const events = await t.events.waitForTerminal(paused.body.runId);
    expect(events.at(-1)?.type).toBe('agent.run.completed');

    // A second thread's run, cancelled while it waits for its client.
    const other = await t.post({ content: 'choose [[tool:pick_color]]', clientTools: [colorTool] });
    await t.events.waitFor(
      (all) =>
        all.some((e) => e.runId === other.body.runId && e.type === 'agent.run.requires_action'),
      'the second run to wait for its client',
    );
    const cancelled = await t.call(`/api/chat/runs/${other.body.runId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'not now' }),
    });
    expect(cancelled.status).toBe(202);
    await t.events.waitForTerminal(other.body.runId);

    expect(
      await t.sql.select(
        sql`select jsonb_typeof(metadata) as metadata from threads where id = ${threadId}`,
      ),
    ).toEqual([{ metadata: 'object' }]);
    expect(
      await t.sql.select(sql`select jsonb_typeof(tools) as tools, jsonb_typeof(client_tools) as client_tools,
        jsonb_typeof(usage) as usage, jsonb_typeof(memory) as memory,
        jsonb_typeof(approved) as approved
        from runs where id = ${paused.body.runId}`),
    ).toEqual([
      {
        tools: 'array',
        client_tools: 'array',
        usage: 'object',
        memory: 'object',
        approved: 'array',
      },
    ]);
    expect(
      await t.sql.select(
        sql`select jsonb_typeof(cancel) as cancel from runs where id = ${other.body.runId}`,
      ),
    ).toEqual([{ cancel: 'object' }]);
    expect(
      await t.sql.select(sql`select jsonb_typeof(tool_calls) as tool_calls from messages
        where run_id = ${paused.body.runId} and tool_calls is not null`),
    ).toEqual([{ tool_calls: 'array' }]);
    expect(
      await t.sql.select(sql`select jsonb_typeof(response) as response from idempotency_keys
        where key like ${`%jsonb-${threadId}%`}`),
    ).toEqual([{ response: 'object' }]);
  });
});
