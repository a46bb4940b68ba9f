import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { waitForValue } from '../../harness/wait';
import pkg from '../../package.json';
import { ERROR_STATUS, type ErrorCode } from '../../src/errors';
import { EVENT_TYPES } from '../../src/events/event';
import { startTestApp, type TestApp } from '../support/app';
import { operationsOf, resolveRefs } from '../support/openapi';
import { redisTestsEnabled } from '../support/redis';

type Json = Record<string, { schema: unknown }>;

const ADMIN = { user: 'ops', password: 'correct-horse-battery' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const adminHeaders = { authorization: basic(ADMIN.user, ADMIN.password) };

describe.skipIf(!redisTestsEnabled())('Swagger', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());

  test('the page loads Swagger UI from this server, not a CDN', async () => {
    const page = await t.request('/swagger');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets).toContain('/swagger/assets/swagger-ui-bundle.js');
    expect(assets).toContain('/swagger/assets/swagger-ui.css');
    for (const asset of assets) {
      const response = await t.request(asset);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    expect((await t.request('/swagger/assets/secrets.txt')).status).toBe(404);
  });

  test('the document has every route with schemas, errors, examples, tags, name and version', async () => {
    const { status, body: doc } = await t.get('/swagger/json');
    expect(status).toBe(200);
    expect(doc.info).toMatchObject({ title: 'Agent run server', version: pkg.version });
    expect(doc.tags.map((tag: { name: string }) => tag.name)).toEqual([
      'chat',
      'threads',
      'runs',
      'feeds',
      'webhooks',
      'health',
    ]);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/chat/messages',
      '/api/chat/models',
      '/api/chat/runs/{runId}',
      '/api/chat/runs/{runId}/approvals',
      '/api/chat/runs/{runId}/cancel',
      '/api/chat/runs/{runId}/events',
      '/api/chat/runs/{runId}/tool-outputs',
      '/api/chat/threads',
      '/api/chat/threads/{threadId}',
      '/api/chat/threads/{threadId}/events',
      '/api/chat/threads/{threadId}/messages',
      '/api/chat/threads/{threadId}/runs',
      '/api/chat/tools',
      '/api/webhooks/deliveries',
      '/api/webhooks/deliveries/{deliveryId}/redeliver',
      '/health',
      '/ready',
    ]);
    const post = doc.paths['/api/chat/messages'].post;
    expect(post.tags).toEqual(['chat']);
    expect(Object.keys(post.responses).sort()).toEqual([
      '202',
      '400',
      '401',
      '409',
      '413',
      '415',
      '503',
    ]);
    expect(post.parameters).toContainEqual(
      expect.objectContaining({ name: 'Idempotency-Key', in: 'header' }),
    );
    expect(post.responses['413'].description).toContain('HTTP_MAX_BODY_BYTES');
    const requestSchema = resolveRefs(doc, post.requestBody.content['application/json'].schema);
    expect(requestSchema.required).toEqual(['content']);
    expect(JSON.stringify(post.requestBody)).toContain('Hello! What can you do?');
    expect(doc.paths['/api/chat/runs/{runId}'].get.responses['404']).toBeDefined();
    const cancel = doc.paths['/api/chat/runs/{runId}/cancel'].post;
    expect(Object.keys(cancel.responses).sort()).toEqual([
      '202',
      '400',
      '401',
      '404',
      '409',
      '413',
      '415',
      '503',
    ]);
    expect(JSON.stringify(cancel.requestBody)).toContain('the user pressed stop');
    for (const [path, example] of [
      ['/api/chat/runs/{runId}/tool-outputs', 'call_9d3m4'],
      ['/api/chat/runs/{runId}/approvals', 'not that file'],
    ] as const) {
      const answer = doc.paths[path].post;
      expect(answer.tags).toEqual(['runs']);
      expect(Object.keys(answer.responses).sort()).toEqual(Object.keys(cancel.responses).sort());
      expect(JSON.stringify(answer.requestBody)).toContain(example);
      expect(JSON.stringify(answer.responses['409'])).toContain('run_not_waiting');
    }
    expect(JSON.stringify(requestSchema)).toContain('clientTools');
    expect(
      JSON.stringify(resolveRefs(doc, doc.paths['/api/chat/runs/{runId}'].get.responses['200'])),
    ).toContain('pendingAction');
    expect(doc.paths['/ready'].get.responses['503']).toBeDefined();
    // The thread as a resource: every route, every error.
    const threads = doc.paths['/api/chat/threads'];
    const thread = doc.paths['/api/chat/threads/{threadId}'];
    const codes = (operation: { responses: object }) => Object.keys(operation.responses).sort();
    expect(codes(threads.post)).toEqual(['201', '400', '401', '409', '413', '415', '503']);
    expect(JSON.stringify(threads.post.responses['409'])).toContain('thread_exists');
    expect(JSON.stringify(threads.post.requestBody)).toContain('support-4711');
    expect(codes(threads.get)).toEqual(['200', '400', '401', '503']);
    expect(JSON.stringify(threads.get.responses['400'])).toContain('invalid_cursor');
    expect(threads.get.parameters).toContainEqual(
      expect.objectContaining({ name: 'metadata.<key>', in: 'query' }),
    );
    expect(codes(thread.get)).toEqual(['200', '401', '404', '503']);
    expect(codes(thread.patch)).toEqual(['200', '400', '401', '404', '413', '415', '503']);
    expect(codes(thread.delete)).toEqual(['204', '401', '404', '503']);
    for (const operation of [threads.post, threads.get, thread.get, thread.patch, thread.delete]) {
      expect(operation.tags).toEqual(['threads']);
    }
    expect(JSON.stringify(resolveRefs(doc, thread.get.responses['200']))).toContain('lastRunId');
  });

  test('the document is OpenAPI 3.0.3 that a client can be generated from', async () => {
    const { body: doc } = await t.get('/swagger/json');
    expect(doc.openapi).toBe('3.0.3');
    // Named schemas: one type each in a generated client.
    for (const name of ['Run', 'Message', 'Thread', 'Error', 'PostMessage', 'RunFeedEvent']) {
      expect(doc.components.schemas[name]).toBeObject();
    }
    const run = doc.paths['/api/chat/runs/{runId}'].get.responses['200'];
    expect(run.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Run' });
    // No JSON Schema 2020-12 forms that OpenAPI 3.0 lacks, anywhere.
    const text = JSON.stringify(doc);
    expect(text).not.toContain('"const"');
    expect(text).not.toContain('"type":"null"');
    expect(text).not.toContain('"patternProperties"');
    expect(text).not.toContain('"$id"');
    // Integers are integers; a nullable field keeps its description in sight.
    for (const path of ['/api/chat/threads', '/api/chat/threads/{threadId}/messages']) {
      const limit = doc.paths[path].get.parameters.find(
        (p: { name: string }) => p.name === 'limit',
      );
      expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1 });
    }
    expect(doc.components.schemas.Run.properties.attempts.type).toBe('integer');
    expect(doc.components.schemas.PostMessage.properties.threadId).toMatchObject({
      type: 'string',
      nullable: true,
      description: expect.stringContaining('new thread'),
    });
    // The auth scheme, which the probes do not need.
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/health'].get.security).toEqual([]);
    expect(doc.paths['/ready'].get.security).toEqual([]);
    const header = doc.paths['/api/chat/messages'].post.parameters.find(
      (p: { name: string }) => p.name === 'Idempotency-Key',
    );
    expect(header).toMatchObject({ in: 'header', required: false, schema: { type: 'string' } });
    expect(new RegExp(header.schema.pattern).test('order-1234-try')).toBe(true);
    expect(new RegExp(header.schema.pattern).test('has space')).toBe(false);

    for (const { where, operation } of operationsOf(doc)) {
      // Only what we accept: JSON bodies.
      if (operation.requestBody) {
        expect([where, Object.keys(operation.requestBody.content)]).toEqual([
          where,
          ['application/json'],
        ]);
      }
      for (const [status, response] of Object.entries<{ description: string; content?: object }>(
        operation.responses,
      )) {
        expect([where, status, typeof response.description]).toEqual([where, status, 'string']);
        const types = Object.keys(response.content ?? {});
        const expected =
          status === '204'
            ? []
            : where.endsWith('/events') && status === '200'
              ? ['text/event-stream']
              : ['application/json'];
        expect([where, status, types]).toEqual([where, status, expected]);
        // Each error response names its codes, and each code is one of that status.
        if (Number(status) >= 400 && where.startsWith('GET /ready') === false) {
          const schema = resolveRefs(doc, (response.content as Json)['application/json']?.schema);
          const codes: string[] = schema.allOf[1].properties.error.properties.code.enum;
          expect(codes.length).toBeGreaterThan(0);
          for (const code of codes) {
            expect([where, code, String(ERROR_STATUS[code as ErrorCode])]).toEqual([
              where,
              code,
              status,
            ]);
          }
        }
      }
    }
  });

  test('the document stays the same once the routes have answered requests', async () => {
    const before = (await t.get('/swagger/json')).body;
    await t.post({ content: 'a request, so the response validators are built' });
    await t.get('/api/chat/runs/run_nope');
    await t.get('/api/chat/threads/nope');
    await t.get('/api/chat/threads');
    await t.get('/api/chat/models');
    expect((await t.get('/swagger/json')).body).toEqual(before);
  });

  test('the feeds are text/event-stream, their frames named by event type', async () => {
    const { body: doc } = await t.get('/swagger/json');
    const frames = (name: string) =>
      (doc.components.schemas[name].anyOf as { $ref: string }[]).map(
        ({ $ref }) =>
          doc.components.schemas[$ref.replace('#/components/schemas/', '')].properties.type.enum[0],
      );
    const runFeed = doc.paths['/api/chat/runs/{runId}/events'].get.responses['200'];
    expect(runFeed.content['text/event-stream'].schema).toEqual({
      $ref: '#/components/schemas/RunFeedEvent',
    });
    expect(frames('RunFeedEvent').sort()).toEqual(
      [
        ...EVENT_TYPES.filter((type) => !type.startsWith('agent.thread.')),
        'agent.feed.reset',
      ].sort(),
    );
    expect(frames('ThreadFeedEvent').sort()).toEqual(
      [...EVENT_TYPES.filter((type) => type !== 'agent.run.delta'), 'agent.feed.reset'].sort(),
    );
  });

  test('the first example of each body is a real request: POST /api/chat/messages answers 202', async () => {
    const { body: doc } = await t.get('/swagger/json');
    const media = doc.paths['/api/chat/messages'].post.requestBody.content['application/json'];
    const first = Object.values<{ value: unknown }>(media.examples)[0]?.value;
    const { status, body } = await t.post(first);
    expect(status).toBe(202);
    expect(body.threadId).toMatch(/^thr_[a-z0-9]{24}$/);
    const threads = doc.paths['/api/chat/threads'].post.requestBody.content['application/json'];
    const thread = await t.request('/api/chat/threads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Object.values<{ value: unknown }>(threads.examples)[0]?.value),
    });
    expect(thread.status).toBe(201);
  });
});

describe.skipIf(!redisTestsEnabled())('Bull Board, admin auth and metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      worker: false,
      env: { ADMIN_USER: ADMIN.user, ADMIN_PASSWORD: ADMIN.password },
    });
  });
  afterAll(() => t.close());

  test.each([
    ['no credentials', {}],
    ['a wrong password', { authorization: basic(ADMIN.user, 'nope') }],
    ['a wrong user', { authorization: basic('admin', ADMIN.password) }],
    ['a bearer token', { authorization: `Bearer ${ADMIN.password}` }],
    ['garbage', { authorization: 'Basic !!!' }],
  ])('/admin/queues with %s is a 401 that asks for basic auth', async (_name, headers) => {
    const response = await t.request('/admin/queues', { headers });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toStartWith('Basic');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unauthorized');
    expect(JSON.stringify(body)).not.toContain(ADMIN.password);
  });

  test('with the right login the board and all its static files load', async () => {
    const page = await t.request('/admin/queues', { headers: adminHeaders });
    expect(page.status).toBe(200);
    const html = await page.text();
    // The page sets <base href="/admin/queues/">: its assets are relative to it.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)]
      .map((m) => new URL(m[1] as string, 'http://localhost/admin/queues/'))
      .filter((url) => url.host === 'localhost')
      .map((url) => url.pathname);
    expect(assets.filter((a) => a.endsWith('.js')).length).toBeGreaterThan(0);
    expect(assets.filter((a) => a.endsWith('.css')).length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect({ asset, status: (await t.request(asset, { headers: adminHeaders })).status }).toEqual(
        {
          asset,
          status: 200,
        },
      );
      // The static files sit behind the same login.
      expect((await t.request(asset)).status).toBe(401);
    }
    const api = await t.request('/admin/queues/api/queues', { headers: adminHeaders });
    expect(api.status).toBe(200);
    const queues = (await api.json()) as { queues: { name: string }[] };
    expect(queues.queues.map((q) => q.name)).toEqual(['agent-runs']);
  });

  test('with the board mounted, API errors keep their own status and shape', async () => {
    const missing = await t.get('/api/chat/runs/run_nothere');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const bad = await t.post({ nope: true });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  test('/metrics needs the admin login and speaks Prometheus', async () => {
    expect((await t.request('/metrics')).status).toBe(401);
    await t.post({ content: 'count me' });
    // A request is counted once its response is out, just after handle() returns: scrape until
    // it shows (bounded), rather than sleeping.
    const { response, text } = await waitForValue(
      async () => {
        const scrape = await t.request('/metrics', { headers: adminHeaders });
        return { response: scrape, text: await scrape.text() };
      },
      (scraped) => scraped.text.includes('status="202"'),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(text).toContain('http_request_duration_seconds_bucket');
    expect(text).toMatch(
      /http_requests_total\{method="POST",route="\/api\/chat\/messages",status="202"\} \d+/,
    );
    expect(text).toContain('# TYPE agent_runs_finished_total counter');
    expect(text).toContain('# TYPE llm_call_duration_seconds histogram');
    expect(text).toContain('# TYPE llm_tokens_total counter');
    expect(text).toMatch(/bullmq_job_count\{queue="agent-runs", state="waiting"\} 1/);
  });

  test('/health, /ready and /swagger stay open', async () => {
    for (const path of ['/health', '/ready', '/swagger', '/swagger/json']) {
      expect((await t.request(path)).status).toBe(200);
    }
  });
});

describe.skipIf(!redisTestsEnabled())('API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, env: { API_KEYS: 'key-one, key-two' } });
  });
  afterAll(() => t.close());

  const post = (authorization?: string) =>
    t.request('/api/chat/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ content: 'hi' }),
    });

  test('no key: 401 and nothing stored', async () => {
    const response = await post();
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toStartWith('Bearer');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'unauthorized',
    );
  });

  test('a wrong key: 401, and the key is not echoed', async () => {
    const response = await post('Bearer key-three');
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('key-');
  });

  test('either right key: through', async () => {
    expect((await post('Bearer key-one')).status).toBe(202);
    expect((await post('bearer key-two')).status).toBe(202);
    const models = await t.request('/api/chat/models', {
      headers: { authorization: 'Bearer key-two' },
    });
    expect(models.status).toBe(200);
    expect((await t.request('/api/chat/models')).status).toBe(401);
  });

  test('probes and docs need no key; the document declares bearer auth', async () => {
    for (const path of ['/health', '/ready', '/swagger']) {
      expect((await t.request(path)).status).toBe(200);
    }
    const doc = (await (await t.request('/swagger/json')).json()) as {
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });
});

describe.skipIf(!redisTestsEnabled())('CORS', () => {
  const preflight = (t: TestApp, origin: string) =>
    t.request('/api/chat/messages', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  test('none by default: no allow-origin header for anyone', async () => {
    const t = await startTestApp({ worker: false });
    try {
      const response = await preflight(t, 'https://elsewhere.example');
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      const get = await t.request('/api/chat/models', {
        headers: { origin: 'https://elsewhere.example' },
      });
      expect(get.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await t.close();
    }
  });

  test('CORS_ORIGINS lets exactly those origins in', async () => {
    const t = await startTestApp({ worker: false, env: { CORS_ORIGINS: 'https://app.example' } });
    try {
      const allowed = await preflight(t, 'https://app.example');
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const other = await preflight(t, 'https://evil.example');
      expect(other.headers.get('access-control-allow-origin')).not.toBe('https://evil.example');
      const get = await t.request('/api/chat/models', {
        headers: { origin: 'https://app.example' },
      });
      expect(get.headers.get('access-control-allow-origin')).toBe('https://app.example');
    } finally {
      await t.close();
    }
  });
});
