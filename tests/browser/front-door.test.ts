import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import pkg from '../../package.json';
import { startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, recordPage, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';

const ADMIN = { username: 'admin', password: 'front-door-browser' };

/**
 * The front door in Chromium, with API_KEYS set as a deployment would have it: the page loads
 * from this server alone, and each of its links, clicked, opens a page (200) or asks for the
 * login it needs (401 with its challenge), which given opens it.
 */
describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)(
  'the front door in a real browser',
  () => {
    let t: TestApp;
    let browser: Browser;
    beforeAll(async () => {
      t = await startTestApp({
        worker: false,
        listen: true,
        env: { API_KEYS: 'front-door-key', ADMIN_PASSWORD: ADMIN.password },
      });
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
      await t.close();
    });

    /** Clicks the link to `path` on the front door; the answer the browser got for it. */
    const follow = async (page: import('playwright-core').Page, path: string) => {
      await page.goto(`${t.baseUrl}/`);
      const [response] = await Promise.all([
        page.waitForResponse(
          (r) => new URL(r.url()).pathname === path && r.request().isNavigationRequest(),
        ),
        page.locator(`a[href="${path}"]`).click(),
      ]);
      return response;
    };

    test('offline-clean, with the version; every link opens or asks for its login', async () => {
      const anonymous = await browser.newContext();
      const page = await anonymous.newPage();
      const seen = recordPage(page, `${t.baseUrl}`);
      const response = await page.goto(`${t.baseUrl}/`);
      expect(response?.status()).toBe(200);
      await page.getByText(`version ${pkg.version}`).waitFor();
      await page.getByText('needs Authorization: Bearer <key>', { exact: false }).waitFor();
      await page.screenshot({ path: screenshotPath('front-door'), fullPage: true });
      const links = await page
        .locator('a')
        .evaluateAll((anchors) => anchors.map((a) => a.getAttribute('href') ?? ''));
      expect(links).toEqual(
        expect.arrayContaining(['/swagger', '/admin/queues', '/metrics', '/health']),
      );
      // The page itself asked this server for nothing but itself, and logged no error.
      expect(seen.outside).toEqual([]);
      expect(seen.errors).toEqual([]);
      expect(seen.responses.map((r) => new URL(r.url).pathname)).toEqual(['/']);

      const signedIn = await browser.newContext({ httpCredentials: ADMIN });
      const withLogin = await signedIn.newPage();
      const behind = recordPage(withLogin, `${t.baseUrl}`);
      for (const path of links) {
        const answer = await follow(page, path);
        if (answer.status() !== 401) {
          expect({ path, status: answer.status() }).toEqual({ path, status: 200 });
          continue;
        }
        // The prompt a browser meets: a challenge for the credential this surface takes, basic
        // auth (which the browser can give) or an API key (which a page of its own asks for).
        const challenge = (await answer.headerValue('www-authenticate')) ?? '';
        expect({ path, challenge }).toEqual({
          path,
          challenge: expect.stringMatching(/^(Basic|Bearer) /),
        });
        if (challenge.startsWith('Basic ')) {
          expect({ path, status: (await follow(withLogin, path)).status() }).toEqual({
            path,
            status: 200,
          });
        }
      }
      // Nor did any page the links opened: Swagger, the board, metrics, health.
      expect([...seen.outside, ...behind.outside]).toEqual([]);
      expect(behind.responses.filter((r) => r.status >= 400)).toEqual([]);
      expect(behind.errors).toEqual([]);
      await anonymous.close();
      await signedIn.close();
    });
  },
);
