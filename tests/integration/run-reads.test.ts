import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

describe.skipIf(!redisTestsEnabled())("GET a thread's runs", () => {
  let llm: FakeLlm;
  let t: TestApp;
  let threadId: string;
  let runIds: string[];
  let foreignRunId: string;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
    threadId = `thread-runs-${Date.now()}`;
    runIds = [];
    for (let i = 1; i <= 5; i++) {
      const { body } = await t.post({ content: `message ${i}`, threadId });
      runIds.push(body.runId);
    }
    const other = await t.post({ content: 'another thread' });
    foreignRunId = other.body.runId;
    for (const runId of [...runIds, foreignRunId]) await t.events.waitForTerminal(runId);
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  const runsPath = (query = '') => `/api/chat/threads/${threadId}/runs${query}`;
  const idsOf = (page: { runs: { id: string }[] }) => page.runs.map((run) => run.id);
  const newestFirst = () => [...runIds].reverse();

  test('newest first, each run as GET run shows it, reply included', async () => {
    const { status, body } = await t.get(runsPath());
    expect(status).toBe(200);
    expect(body).toMatchObject({ threadId, hasMore: false, nextBefore: null });
    expect(idsOf(body)).toEqual(newestFirst());
    expect(body.runs.map((run: { reply: { content: string } }) => run.reply.content)).toEqual(
      [5, 4, 3, 2, 1].map((i) => `echo: message ${i}`),
    );
    for (const run of body.runs)
      expect(run).toEqual((await t.get(`/api/chat/runs/${run.id}`)).body);
  });

  test('pages back with before=nextBefore while hasMore', async () => {
    const first = await t.get(runsPath('?limit=2'));
    expect(idsOf(first.body)).toEqual(newestFirst().slice(0, 2));
    expect(first.body).toMatchObject({ hasMore: true, nextBefore: runIds[3] });
    const second = await t.get(runsPath(`?limit=2&before=${first.body.nextBefore}`));
    expect(idsOf(second.body)).toEqual(newestFirst().slice(2, 4));
    expect(second.body).toMatchObject({ hasMore: true, nextBefore: runIds[1] });
    const third = await t.get(runsPath(`?limit=2&before=${second.body.nextBefore}`));
    expect(idsOf(third.body)).toEqual(newestFirst().slice(4));
    expect(third.body).toMatchObject({ hasMore: false, nextBefore: null });
    // Exactly filled pages: no more is no more.
    const exact = await t.get(runsPath(`?limit=4&before=${runIds[4]}`));
    expect(idsOf(exact.body)).toEqual(newestFirst().slice(1));
    expect(exact.body).toMatchObject({ hasMore: false, nextBefore: null });
  });

  test('limit: 1 and 200 are fine; 0, 201, abc and 1.5 are a 400 invalid_request', async () => {
    expect(idsOf((await t.get(runsPath('?limit=1'))).body)).toEqual(newestFirst().slice(0, 1));
    expect(idsOf((await t.get(runsPath('?limit=200'))).body)).toEqual(newestFirst());
    for (const limit of ['0', '201', 'abc', '1.5']) {
      const bad = await t.get(runsPath(`?limit=${limit}`));
      expect({ limit, status: bad.status, code: bad.body.error?.code }).toEqual({
        limit,
        status: 400,
        code: 'invalid_request',
      });
    }
  });

  test('a before that is not a run of this thread is a 400 invalid_cursor', async () => {
    for (const before of ['run_unknown', foreignRunId]) {
      const bad = await t.get(runsPath(`?before=${before}`));
      expect({ before, status: bad.status, code: bad.body.error?.code }).toEqual({
        before,
        status: 400,
        code: 'invalid_cursor',
      });
    }
  });

  test('an unknown thread is a 404 not_found', async () => {
    const missing = await t.get('/api/chat/threads/nope/runs');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  test('Swagger documents the route: summary, description, paging, examples, every error', async () => {
    const { body: doc } = await t.get('/swagger/json');
    const get = doc.paths['/api/chat/threads/{threadId}/runs'].get;
    expect(get.tags).toEqual(['runs']);
    expect(get.summary).toBeString();
    expect(get.description).toContain('before=nextBefore');
    expect(get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'before',
      'limit',
      'threadId',
    ]);
    expect(Object.keys(get.responses).sort()).toEqual(['200', '400', '401', '404', '503']);
    expect(JSON.stringify(get.responses['200'])).toContain('"nextBefore":"run_');
    expect(get.responses['400'].description).toContain('invalid_cursor');
  });
});
