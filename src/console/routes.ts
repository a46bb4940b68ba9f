import { Elysia } from 'elysia';
import type { Logger } from '../logger';
import { buildConsole, type ConsoleBundle } from './bundle';
import { CONSOLE_PATH } from './links';
import { renderShell } from './shell';

const hide = { detail: { hide: true } };
const IMMUTABLE = 'public, max-age=31536000, immutable';
const TYPES = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/**
 * The web console (docs/console.md): one HTML shell for `/console` and its deep links
 * (`/threads/:threadId`, `/runs/:runId`), and its script and stylesheet. The page is open like
 * the front door and holds no data: everything it shows it asks `/api` for, with the key the
 * user gives it when API_KEYS is set. The bundle is built on the first request and then held in
 * memory, so a process that never serves the console never pays for the build.
 */
export function consoleRoutes(opts: { apiKeys: boolean; logger: Logger }) {
  let bundle: Promise<ConsoleBundle> | undefined;
  const built = () => {
    bundle ??= buildConsole().catch((error) => {
      bundle = undefined; // a later request tries again
      opts.logger.error({ err: error }, 'the console did not build');
      throw error;
    });
    return bundle;
  };
  const shell = async () =>
    new Response(renderShell({ version: (await built()).version, apiKeys: opts.apiKeys }), {
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
    });
  const asset = async (request: Request, kind: 'js' | 'css') => {
    const b = await built();
    const headers: Record<string, string> = {
      'content-type': TYPES[kind],
      'cache-control': IMMUTABLE,
      vary: 'accept-encoding',
    };
    if (!/\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')) {
      return new Response(b[kind], { headers });
    }
    return new Response(b.gzipped[kind], { headers: { ...headers, 'content-encoding': 'gzip' } });
  };
  return new Elysia({ name: 'console', prefix: CONSOLE_PATH })
    .get('', shell, hide)
    .get('/', shell, hide)
    .get('/threads/:threadId', shell, hide)
    .get('/runs/:runId', shell, hide)
    .get('/assets/console.js', ({ request }) => asset(request, 'js'), hide)
    .get('/assets/console.css', ({ request }) => asset(request, 'css'), hide);
}
