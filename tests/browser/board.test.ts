import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { waitForJobState } from '../../harness/wait';
import { captureLogs, startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, recordPage, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';
import { writeHttpToolsFile } from '../support/tools-file';

const ADMIN = { username: 'admin', password: 'board-test-password' };

describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)('Bull Board in a real browser', () => {
  let llm: FakeLlm;
  let tools: HttpToolServer;
  let t: TestApp;
  let browser: Browser;
  const logs = captureLogs();
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    tools = startHttpToolServer();
    const toolsFile = writeHttpToolsFile(tools.url, { lookup: '/echo' });
    t = await startTestApp({
      listen: true,
      logger: logs.logger,
      env: { OPENAI_BASE_URL: llm.url, ADMIN_PASSWORD: ADMIN.password, TOOLS_FILE: toolsFile },
    });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await llm.stop();
    tools.stop();
  });

  test('a job tells its run’s story: steps and tool calls in its log, progress, the reply, a link to the console; offline-clean', async () => {
    const { body } = await t.post({
      content: 'look it up [[tool:lookup {"q":"board"}]]',
      tools: ['lookup'],
    });
    const runId: string = body.runId;
    await t.events.waitForTerminal(runId);
    expect(await waitForJobState(t.deps.queue, runId, 'completed')).toBe('completed');

    const context = await browser.newContext({
      httpCredentials: ADMIN,
      viewport: { width: 1400, height: 1000 },
    });
    const page = await context.newPage();
    const seen = recordPage(page, `${t.baseUrl}`);
    // The job page polls the flow of the job it shows: wait for one poll's answer.
    const flowPolled = page.waitForResponse((response) => response.url().endsWith('/flow'));
    await page.goto(`${t.baseUrl}/admin/queues/queue/agent-runs/${runId}`);
    const card = page.locator('[class*="card"]').filter({ hasText: runId }).first();
    await card.waitFor();
    expect((await flowPolled).status()).toBe(200);

    // Data: the return value names the reply and shows its start.
    await card.getByText(/replyPreview/).waitFor();
    const data = (await card.textContent()) ?? '';
    expect(data).toContain('echo: lookup said');
    const run = await t.get(`/api/chat/runs/${runId}`);
    expect(data).toContain(run.body.reply.id);

    // The link to the run in the console.
    const link = card.getByRole('link', { name: 'open the run in the console' });
    expect(await link.getAttribute('href')).toBe(`/console/runs/${runId}`);

    // Progress: steps, tool calls, streamed tokens.
    await card.getByText('Progress', { exact: true }).click();
    await card.getByText(/streamedTokens/).waitFor();
    expect((await card.textContent()) ?? '').toMatch(/toolCalls.*1/s);

    // Logs: the attempt, each model call with its prompt and window, the tool call, the end.
    await card.getByText('Logs', { exact: true }).click();
    await card.getByText(/completed · reply/).waitFor();
    const log = (await card.textContent()) ?? '';
    expect(log).toContain('attempt 1 · model gpt-4o-mini');
    expect(log).toMatch(/step 1 · gpt-4o-mini answered in \d+ ms: 1 tool call \(lookup\)/);
    expect(log).toMatch(/window 1 message \(\d+ tokens\)/);
    expect(log).toMatch(/step 1 · tool lookup \(http\) answered in \d+ ms/);
    expect(log).toMatch(/step 2 · gpt-4o-mini answered in \d+ ms: a reply of \d+ chars/);
    expect(log).toContain('2 steps, 1 tool call');
    await page.screenshot({ path: screenshotPath('board-job-logs'), fullPage: true });

    // The Redis details, which answered 500 like the flow did.
    const stats = await page.request.get(`${t.baseUrl}/admin/queues/api/redis/stats`);
    expect(stats.status()).toBe(200);

    const flows = seen.responses.filter((response) => response.url.endsWith('/flow'));
    expect(flows.length).toBeGreaterThan(0);
    expect(flows.filter((response) => response.status !== 200)).toEqual([]);
    expect(seen.outside).toEqual([]);
    expect(seen.errors).toEqual([]);
    // Nor did the server log an error for any of it (the flow poll's 500 did, every time).
    expect(logs.lines.filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
    await context.close();
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
