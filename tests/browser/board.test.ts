import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';

const ADMIN = { username: 'admin', password: 'board-test-password' };

describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)('Bull Board in a real browser', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      listen: true,
      env: { OPENAI_BASE_URL: llm.url, ADMIN_PASSWORD: ADMIN.password },
    });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await llm.stop();
  });

  test('a run that failed shows as failed; Retry re-runs it to completed', async () => {
    llm.enqueue({ kind: 'status', status: 401 });
    const { body } = await t.post({ content: 'please retry me' });
    const runId: string = body.runId;
    await t.events.waitForTerminal(runId);
    expect((await t.get(`/api/chat/runs/${runId}`)).body.status).toBe('failed');
    expect(await waitForJobState(t.deps.queue, runId, 'failed')).toBe('failed');

    const context = await browser.newContext({
      httpCredentials: ADMIN,
      viewport: { width: 1400, height: 1000 },
    });
    const page = await context.newPage();
    await page.goto(`${t.baseUrl}/admin/queues/queue/agent-runs?status=failed`);
    const card = page.locator('[class*="card"]').filter({ hasText: runId }).first();
    await card.waitFor();
    expect(await card.textContent()).toContain(body.threadId); // the job's name carries the thread
    await card.getByText('Error', { exact: true }).click();
    await card
      .getByText(/llm_unauthorized/)
      .first()
      .waitFor();
    await page.screenshot({ path: screenshotPath('board-failed'), fullPage: true });

    // The model recovers (the fake's default is a reply); the operator clicks Retry.
    // The card's action buttons are icons; the tooltip (data-title) names them.
    await card.locator('[data-title="Retry"] button').click();
    await page.getByText('Are you sure that you want to retry this job?').waitFor();
    await page.screenshot({ path: screenshotPath('board-retry-confirm') });
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();

    await t.events.waitFor(
      (all) => all.some((e) => e.runId === runId && e.type === 'agent.run.completed'),
      'the completed event after Retry',
    );
    const run = await t.get(`/api/chat/runs/${runId}`);
    expect(run.body).toMatchObject({ status: 'completed', attempts: 2 });
    expect(run.body.reply.content).toBe('echo: please retry me');

    await page.goto(`${t.baseUrl}/admin/queues/queue/agent-runs?status=completed`);
    await page.locator('[class*="card"]').filter({ hasText: runId }).first().waitFor();
    await page.screenshot({ path: screenshotPath('board-completed-after-retry'), fullPage: true });
    await context.close();
  });
});
