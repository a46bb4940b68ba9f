import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';

describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)('Swagger UI in a real browser', () => {
  let t: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestApp({ worker: false, listen: true });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
  });

  test('lists the chat routes, and "Try it out" with the prefilled example returns 202', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    await page.goto(`${t.baseUrl}/swagger`);

    const paths = page.locator('.opblock-summary-path');
    await paths.first().waitFor();
    const listed = await paths.allInnerTexts();
    for (const path of [
      '/api/chat/messages',
      '/api/chat/models',
      '/api/chat/threads/{threadId}',
      '/api/chat/threads/{threadId}/messages',
      '/api/chat/runs/{runId}',
    ]) {
      expect(listed.map((p) => p.replace(/\u200b/g, ''))).toContain(path);
    }
    await page.screenshot({ path: screenshotPath('swagger-overview'), fullPage: false });

    // The Authorize button: the document declares the bearer scheme.
    await page.locator('button.authorize').waitFor();

    // "Try it out" with the body Swagger UI fills in from the document's first example.
    const post = page.locator('.opblock-post').filter({
      has: page.locator('.opblock-summary-path', { hasText: /^\/api\/chat\/messages$/ }),
    });
    await post.locator('.opblock-summary').click();
    await post.locator('button.try-out__btn').click();
    const body = post.locator('textarea.body-param__text');
    await body.waitFor();
    const prefilled = JSON.parse(await body.inputValue());
    expect(prefilled).toEqual({ content: 'Hello! What can you do?' });
    // Only what the route takes: JSON.
    const mediaTypes = await post.locator('.body-param-content-type select option').allInnerTexts();
    expect(mediaTypes).toEqual(['application/json']);
    await post.locator('button.execute').click();

    const status = post.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor();
    expect((await status.textContent())?.trim()).toStartWith('202');
    const responseBody = await post
      .locator('.live-responses-table .microlight')
      .first()
      .textContent();
    const accepted = JSON.parse(responseBody ?? 'null');
    // (Copy first: bun:test's toMatchObject writes asymmetric matchers into the object it checks.)
    const runId: string = accepted.runId;
    expect(runId).toMatch(/^run_[a-z0-9]{24}$/);
    expect(accepted.status).toBe('queued');
    await post.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('swagger-try-it-out'), fullPage: true });

    // It really went through: the run exists, on a new thread (not one named "string").
    const run = await t.get(`/api/chat/runs/${runId}`);
    expect(run.body).toMatchObject({ id: runId, status: 'queued' });
    const threadId: string = accepted.threadId;
    expect(threadId).toMatch(/^thr_[a-z0-9]{24}$/);
    expect((await t.get('/api/chat/threads/string')).status).toBe(404);
    const messages = await t.get(`/api/chat/threads/${threadId}/messages`);
    expect(messages.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'Hello! What can you do?',
    ]);
    // Everything the page needed came from this server.
    expect(failed).toEqual([]);
    await page.close();
  });
});
