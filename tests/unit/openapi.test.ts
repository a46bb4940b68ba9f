import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Elysia, t } from 'elysia';
import { buildDocument, lintDocument } from '../../tools/openapi';
import { docsRoutes } from '../../src/docs/swagger';
import { errorResponse } from '../../src/http/error-schemas';
import { eventStream, examples } from '../../src/http/openapi';

/** The document of a small app of its own, finished as the real one is. */
// biome-ignore lint/suspicious/noExplicitAny: any app of routes
async function documentOf(app: Elysia<any, any, any, any, any, any, any>) {
  const root = new Elysia({ normalize: false }).use(docsRoutes()).use(app);
  // biome-ignore lint/suspicious/noExplicitAny: tests read the document freely
  return (await (await root.handle(new Request('http://localhost/swagger/json'))).json()) as any;
}

describe('the finished OpenAPI document', () => {
  test('a named schema is listed once and referred to; 3.1 forms become 3.0', async () => {
    const item = t.Object(
      {
        id: t.String(),
        count: t.Integer({ minimum: 0 }),
        kind: t.Union([t.Literal('a'), t.Literal('b')], { description: 'which' }),
        note: t.Nullable(t.String({ description: 'a note' })),
        tags: t.Record(t.String(), t.String()),
        ratio: t.Number({ exclusiveMinimum: 0 }),
      },
      { $id: 'Item', description: 'An item.', examples: [{ id: 'i1' }] },
    );
    const doc = await documentOf(
      new Elysia()
        .get(
          '/items/:id',
          () => ({ id: 'i1', count: 1, kind: 'a' as const, note: null, tags: {}, ratio: 1 }),
          {
            query: t.Object({ limit: t.Optional(t.Integer({ minimum: 1, default: 5 })) }),
            response: { 200: item, 404: errorResponse(['not_found']) },
          },
        )
        .get('/pair', () => ({ first: null, second: null }), {
          response: {
            200: t.Object(
              { first: t.Nullable(item), second: t.Nullable(item) },
              { description: 'Two of them.' },
            ),
          },
        }),
    );
    expect(doc.components.schemas.Item).toEqual({
      description: 'An item.',
      type: 'object',
      required: ['id', 'count', 'kind', 'note', 'tags', 'ratio'],
      properties: {
        id: { type: 'string' },
        count: { minimum: 0, type: 'integer' },
        kind: { type: 'string', enum: ['a', 'b'], description: 'which' },
        note: { type: 'string', description: 'a note', nullable: true },
        tags: { type: 'object', additionalProperties: { type: 'string' } },
        ratio: { type: 'number', minimum: 0, exclusiveMinimum: true },
      },
      example: { id: 'i1' },
    });
    const get = doc.paths['/items/{id}'].get;
    expect(get.responses['200']).toEqual({
      description: 'An item.',
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/Item' },
          example: { id: 'i1' },
        },
      },
    });
    expect(get.parameters).toEqual([
      { in: 'path', name: 'id', required: true, schema: { type: 'string' } },
      {
        in: 'query',
        name: 'limit',
        required: false,
        schema: { minimum: 1, default: 5, type: 'integer' },
      },
    ]);
    expect(get.responses['404'].content['application/json'].examples).toEqual({
      not_found: {
        summary: 'not_found',
        value: { error: { code: 'not_found', message: expect.any(String) } },
      },
    });
    expect(
      doc.paths['/pair'].get.responses['200'].content['application/json'].schema.properties.first,
    ).toEqual({
      type: 'object',
      allOf: [{ $ref: '#/components/schemas/Item' }],
      nullable: true,
    });
  });

  test('bodies are JSON, named examples keep their names, event streams are text/event-stream', async () => {
    const frame = t.Object({ type: t.Literal('tick') }, { $id: 'Tick', description: 'A tick.' });
    const doc = await documentOf(
      new Elysia()
        .post('/things', () => ({ ok: true }), {
          body: t.Object(
            { name: t.String() },
            { ...examples({ 'A plain one': { name: 'a' }, 'Another (with more)': { name: 'b' } }) },
          ),
          response: { 200: t.Object({ ok: t.Boolean() }, { description: 'Done.' }) },
        })
        .get('/ticks', () => new Response(''), { response: { 200: eventStream(frame, 'Ticks.') } }),
    );
    const post = doc.paths['/things'].post;
    expect(Object.keys(post.requestBody.content)).toEqual(['application/json']);
    expect(post.requestBody.content['application/json'].examples).toEqual({
      'a-plain-one': { summary: 'A plain one', value: { name: 'a' } },
      'another-with-more': { summary: 'Another (with more)', value: { name: 'b' } },
    });
    expect(Object.keys(post.responses['200'].content)).toEqual(['application/json']);
    expect(doc.paths['/ticks'].get.responses['200']).toEqual({
      description: 'Ticks.',
      content: { 'text/event-stream': { schema: { $ref: '#/components/schemas/Tick' } } },
    });
  });

  test('what OpenAPI 3.0 cannot say is refused, naming where', async () => {
    const app = new Elysia().get('/odd', () => 'x', {
      response: { 200: t.String({ description: 'odd', contentEncoding: 'base64' }) },
    });
    const root = new Elysia().use(docsRoutes()).use(app);
    const response = await root.handle(new Request('http://localhost/swagger/json'));
    expect(response.status).toBe(500);
  });
});

describe('the linter', () => {
  let dir: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read the document freely
  let doc: any;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'));
    doc = await buildDocument();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('passes the document /swagger/json serves, with no warning', async () => {
    const file = join(dir, 'openapi.json');
    await Bun.write(file, JSON.stringify(doc));
    const { exitCode, output } = lintDocument(file);
    expect(output).toContain('Your API description is valid');
    expect(output).not.toMatch(/\d+ warnings?/);
    expect(exitCode).toBe(0);
  });

  test('fails a document with an error in it', async () => {
    const broken = structuredClone(doc);
    broken.components.schemas.Run.properties.status.const = 'queued';
    delete broken.paths['/api/chat/messages'].post.responses['202'].description;
    const file = join(dir, 'broken.json');
    await Bun.write(file, JSON.stringify(broken));
    const { exitCode, output } = lintDocument(file);
    expect(output).toContain('const');
    expect(exitCode).not.toBe(0);
  });
});
