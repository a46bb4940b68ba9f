import { Elysia } from 'elysia';
import pkg from '../../package.json';
import { renderFrontDoor, SURFACES } from './page';

const NO_ICON = { 'cache-control': 'public, max-age=86400' };

/**
 * `GET /`: the front door (page.ts). Open, like /health and /swagger: it shows only the version
 * and the way in, never a secret. `servedPaths` are the app's GET routes: a surface is listed
 * only when this server serves it, so the page never links to a 404 (the console appears once
 * it is mounted). `/favicon.ico` answers 204.
 */
export function homeRoutes(opts: { apiKeys: boolean; servedPaths: string[] }) {
  const served = (path: string) =>
    opts.servedPaths.some((route) => route === path || route.startsWith(`${path}/`));
  const page = new Response(
    renderFrontDoor({
      version: pkg.version,
      surfaces: SURFACES.filter((surface) => served(surface.path)),
      apiKeys: opts.apiKeys,
    }),
    { headers: { 'content-type': 'text/html; charset=utf-8' } },
  );
  return (
    new Elysia({ name: 'home' })
      .get('/', () => page.clone(), { detail: { hide: true } })
      // A browser asks every page's host for an icon, a JSON one too (/health, /metrics): "none",
      // rather than a 404 in its console and in the request log.
      .get('/favicon.ico', () => new Response(null, { status: 204, headers: NO_ICON }), {
        detail: { hide: true },
      })
  );
}
