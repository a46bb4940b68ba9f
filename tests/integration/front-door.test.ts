import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import pkg from '../../package.json';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const ADMIN = { user: 'ops', password: 'front-door-password' };
const adminHeaders = {
  authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`,
};

const linksOf = (html: string) => [...html.matchAll(/<a href="([^"]+)"/g)].map((m) => m[1]);

/**
 * `GET /`: a small page with the version and a link to each surface this server serves, saying
 * who may open it. Open, with or without API_KEYS, as /health and /swagger are.
 */
describe.skipIf(!redisTestsEnabled())('the front door', () => {
  let open: TestApp;
  let keyed: TestApp;
  beforeAll(async () => {
    const env = { ADMIN_USER: ADMIN.user, ADMIN_PASSWORD: ADMIN.password };
    open = await startTestApp({ worker: false, env });
    keyed = await startTestApp({ worker: false, env: { ...env, API_KEYS: 'k-one,k-two' } });
  });
  afterAll(async () => {
    await open?.close();
    await keyed?.close();
  });

  test('a self-contained page: the version, and links to Swagger, Bull Board, metrics and health', async () => {
    const response = await open.request('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    expect(html).toContain(`version ${pkg.version}`);
    const links = linksOf(html);
    expect(links).toEqual(
      expect.arrayContaining(['/swagger', '/admin/queues', '/metrics', '/health']),
    );
    // Nothing to load from anywhere: no script, no outside URL, no asset but an inline favicon.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toContain('<script');
    expect([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])).toEqual([
      'data:,',
      ...links,
    ]);
    expect(html).toContain('API_KEYS</code> is empty: <code>/api</code> is open');
    expect(html).toContain('basic auth: ADMIN_USER / ADMIN_PASSWORD');
  });

  test('the console is linked exactly when this server serves it', async () => {
    const links = linksOf(await (await open.request('/')).text());
    const served = (await open.request('/console')).status !== 404;
    expect(links.includes('/console')).toBe(served);
  });

  test('every link answers: 200, or 401 with its auth prompt and 200 with the credential it asks for', async () => {
    const credentials: Record<string, Record<string, string>> = {
      Basic: adminHeaders,
      Bearer: { authorization: 'Bearer k-one' },
    };
    for (const t of [open, keyed]) {
      for (const link of linksOf(await (await t.request('/')).text()) as string[]) {
        const anonymous = await t.request(link);
        if (anonymous.status !== 401) {
          expect({ link, status: anonymous.status }).toEqual({ link, status: 200 });
          continue;
        }
        const scheme = anonymous.headers.get('www-authenticate')?.split(' ')[0] ?? '';
        expect({ link, scheme }).toEqual({
          link,
          scheme: expect.stringMatching(/^(Basic|Bearer)$/),
        });
        const signedIn = await t.request(link, { headers: credentials[scheme] });
        expect({ link, status: signedIn.status }).toEqual({ link, status: 200 });
      }
    }
  });

  test('with API_KEYS set the page is still open and says /api needs a key', async () => {
    const response = await keyed.request('/');
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain(
      'Every <code>/api</code> call needs <code>Authorization: Bearer &lt;key&gt;</code>',
    );
    expect(html).toContain('“Try it out” needs a key from API_KEYS');
    expect(html).not.toContain('k-one');
    // The rest of the surface is as it was: /api wants the key, the board the login.
    const api = await keyed.request('/api/chat/models');
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toStartWith('Bearer');
    const models = await keyed.request('/api/chat/models', {
      headers: { authorization: 'Bearer k-two' },
    });
    expect(models.status).toBe(200);
  });

  test('a browser’s icon request gets "none", not a 404', async () => {
    const response = await open.request('/favicon.ico');
    expect(response.status).toBe(204);
  });

  test('any other path is still the JSON 404', async () => {
    const response = await open.request('/nothing-here');
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  test('Swagger’s description links the console and the board', async () => {
    const { body } = await open.get('/swagger/json');
    expect(body.info.description).toContain('[console](/console)');
    expect(body.info.description).toContain('[Bull Board](/admin/queues)');
  });
});
