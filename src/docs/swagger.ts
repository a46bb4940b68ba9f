import { dirname, join } from 'node:path';
import { swagger } from '@elysiajs/swagger';
import { Elysia } from 'elysia';
import pkg from '../../package.json';
import { type DocumentedRoute, finishDocument } from './openapi-document';

const ASSETS = dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSET_TYPES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const SPEC_PATH = '/swagger/json';

/**
 * Swagger UI at /swagger over the OpenAPI document at /swagger/json. The plugin builds the
 * document from the routes' schemas, and `finishDocument` makes it OpenAPI 3.0.3 that lints
 * clean (openapi-document.ts). The page is ours because the plugin's loads Swagger UI from a
 * CDN, and a docs page must work offline: its assets come from swagger-ui-dist, served here.
 *
 * The document is the same whatever the configuration, so the client generated from it
 * (src/client/) is too: the bearer scheme is always declared, and is needed when API_KEYS is set.
 */
export function docsRoutes() {
  const page = new Response(renderPage(), {
    headers: { 'content-type': 'text/html; charset=utf-8' },
  });
  const docs = new Elysia({ name: 'docs' });
  return docs
    .onAfterHandle(({ path, response }) =>
      path === SPEC_PATH
        ? finishDocument(response as Record<string, unknown>, globalRoutes(docs))
        : undefined,
    )
    .use(
      swagger({
        provider: 'swagger-ui',
        path: '/swagger',
        specPath: SPEC_PATH,
        exclude: [/^\/admin/, '/metrics', /^\/swagger/],
        documentation: {
          info: {
            title: 'Agent run server',
            version: pkg.version,
            description:
              'Post chat messages, follow the LLM runs they start. Events go to a Redis Stream; ' +
              'operators watch runs in the [console](/console) and [Bull Board](/admin/queues).',
          },
          servers: [{ url: '/', description: 'The server that serves this document' }],
          tags: [
            { name: 'chat', description: 'Post messages, read a thread’s messages' },
            {
              name: 'threads',
              description: 'Threads as resources: create, list by metadata, patch, delete',
            },
            { name: 'runs', description: 'Follow a run: status, attempts, reply, usage' },
            { name: 'feeds', description: 'Watch runs and threads live (Server-Sent Events)' },
            {
              name: 'webhooks',
              description: 'The signed webhook deliveries: their log, and sending one again',
            },
            { name: 'health', description: 'Liveness and readiness probes' },
          ],
          // Every operation, unless it says otherwise (the probes: `detail: { security: [] }`).
          security: [{ bearerAuth: [] }],
          components: {
            securitySchemes: {
              bearerAuth: {
                type: 'http',
                scheme: 'bearer',
                description:
                  'One of the keys in API_KEYS: `Authorization: Bearer <key>`. With API_KEYS ' +
                  'empty the API is open and any value (or none) is accepted.',
              },
            },
          },
        },
      }),
    )
    .get('/swagger', () => page.clone(), { detail: { hide: true } })
    .get(
      '/swagger/assets/:file',
      ({ params, status }) => {
        const type = ASSET_TYPES[params.file];
        if (!type) return status(404, { error: { code: 'not_found', message: 'no such asset' } });
        return new Response(Bun.file(join(ASSETS, params.file)), {
          headers: { 'content-type': type, 'cache-control': 'public, max-age=86400' },
        });
      },
      { detail: { hide: true } },
    );
}

/**
 * Every route of the app this instance is mounted in. Elysia types `getGlobalRoutes` protected;
 * the swagger plugin calls it the same way to list the routes it documents.
 */
function globalRoutes(instance: object): DocumentedRoute[] {
  return (instance as unknown as { getGlobalRoutes(): DocumentedRoute[] }).getGlobalRoutes();
}

function renderPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>Agent run server — API</title>
  <link rel="icon" type="image/png" href="/swagger/assets/favicon-32x32.png" />
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: '/swagger/json',
      dom_id: '#swagger-ui',
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: false,
    });
  </script>
</body>
</html>`;
}
