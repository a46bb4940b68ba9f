import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, recordPage, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';

const KEY = 'console-browser-key';

/**
 * The console behind API_KEYS: it asks for a key before its first call, keeps it for the tab
 * only, sends it on every call and every feed (fetch, not EventSource, so the header goes), and
 * asks again when the key is refused.
 */
describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)('the web console with API_KEYS', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ listen: true, env: { OPENAI_BASE_URL: llm.url, API_KEYS: KEY } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await llm.stop();
  });

  test('asks for the key, refuses a wrong one, streams with the right one; the key stays in its tab', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const seen = recordPage(page, `${t.baseUrl}`);
    const apiCalls: { path: string; authorization?: string }[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith('/api/'))
        apiCalls.push({ path: url.pathname, authorization: request.headers().authorization });
    });

    await page.goto(`${t.baseUrl}/console`);
    const keyBox = page.getByLabel('API key');
    await keyBox.waitFor();
    // Nothing asked of /api before there is a key.
    expect(apiCalls).toEqual([]);
    await page.screenshot({ path: screenshotPath('console-key-prompt') });

    await keyBox.fill('not-the-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByRole('alert').filter({ hasText: 'That key was refused' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Use key' }).press('Enter');
    await page.getByRole('button', { name: 'New thread' }).click();
    await page.waitForURL(/\/console\/threads\/thr_/);
    llm.enqueue({ kind: 'stream', chunks: ['keyed ', 'and ', 'streamed'], delayMs: 80 });
    await page.getByRole('textbox', { name: 'Message', exact: true }).fill('with a key');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.locator('.messages .reply', { hasText: 'keyed and streamed' }).waitFor();
    // Every call after the key, the feeds too, carried it.
    const keyed = apiCalls.filter((call) => call.authorization === `Bearer ${KEY}`);
    expect(keyed.some((call) => call.path.endsWith('/events'))).toBe(true);
    expect(apiCalls.filter((call) => !call.authorization?.startsWith('Bearer '))).toEqual([]);

    // Another tab of the same browser asks again: the key was kept for that tab only.
    const other = await context.newPage();
    await other.goto(`${t.baseUrl}/console`);
    await other.getByLabel('API key').waitFor();
    await other.close();

    // Forget: the prompt again, the tab's storage empty.
    await page.getByRole('button', { name: 'Forget API key' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    expect(seen.outside).toEqual([]);
    // The one error is the refused key's 401.
    expect(seen.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    expect(seen.errors.length).toBeGreaterThan(0);
    await context.close();
  });
});
