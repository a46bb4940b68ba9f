import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const assetsOf = (html: string) =>
  [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1] ?? '');

/**
 * `/console` and its deep links serve one shell; its script and stylesheet are built from source
 * by the server itself; none of it is in the OpenAPI document; the page is open (it holds no
 * data) and says whether /api wants a key.
 */
describe.skipIf(!redisTestsEnabled())('the console routes', () => {
  let open: TestApp;
  let keyed: TestApp;
  beforeAll(async () => {
    open = await startTestApp({ worker: false });
    keyed = await startTestApp({ worker: false, env: { API_KEYS: 'console-key' } });
  });
  afterAll(async () => {
    await open?.close();
    await keyed?.close();
  });

  test('the shell at /console and every deep link, loading only this server’s assets', async () => {
    const shells: string[] = [];
    for (const path of ['/console', '/console/', '/console/threads/thr_x', '/console/runs/run_y']) {
      const response = await open.request(path);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      shells.push(await response.text());
    }
    expect(new Set(shells).size).toBe(1);
    const html = shells[0] ?? '';
    expect(html).toContain('<meta name="agent-run-api-keys" content="none" />');
    expect(html).not.toMatch(/https?:\/\//);
    const assets = assetsOf(html);
    expect(assets.map((a) => a.split('?')[0])).toEqual([
      '/console/assets/console.css',
      '/console/assets/console.js',
    ]);
    for (const asset of assets) {
      const response = await open.request(asset);
      expect({ asset, status: response.status }).toEqual({ asset, status: 200 });
      expect(response.headers.get('cache-control')).toContain('immutable');
      expect((await response.text()).length).toBeGreaterThan(1000);
    }
    // Gzipped for a browser that takes it, as built.
    const gzipped = await open.request(assets[1] ?? '', { headers: { 'accept-encoding': 'gzip' } });
    expect(gzipped.headers.get('content-encoding')).toBe('gzip');
    const js = await (await open.request(assets[1] ?? '')).text();
    expect(Bun.gunzipSync(new Uint8Array(await gzipped.arrayBuffer())).length).toBe(
      new TextEncoder().encode(js).length,
    );
    expect(js).toContain('last-event-id'); // the feed reader: this is the console's build
  });

  test('with API_KEYS the page stays open and tells the console to ask for a key', async () => {
    const response = await keyed.request('/console');
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('content="required"');
    expect((await keyed.request('/api/chat/threads')).status).toBe(401);
  });

  test('hidden from the OpenAPI document; the front door links it; an unknown page is a 404', async () => {
    const doc = await open.get('/swagger/json');
    expect(Object.keys(doc.body.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
    expect(await (await open.request('/')).text()).toContain('<a href="/console">');
    expect((await open.request('/console/nowhere')).status).toBe(404);
  });
});
