import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { type HttpToolServer, startHttpToolServer } from '../../harness/tool-servers';
import { startTestApp, type TestApp } from '../support/app';
import { chromiumAvailable, launchBrowser, recordPage, screenshotPath } from '../support/browser';
import { redisTestsEnabled } from '../support/redis';
import { startTcpProxy } from '../support/tcp-proxy';
import { writeHttpToolsFile } from '../support/tools-file';

/**
 * The web console in Chromium against the real server (only the model is fake): a reply
 * streaming in, tool cards, approvals, cancel, two tabs on one thread, a feed that drops and
 * resumes, the keyboard alone. Every page it opens asks this server alone and logs no error.
 */
describe.skipIf(!redisTestsEnabled() || !chromiumAvailable)('the web console', () => {
  let llm: FakeLlm;
  let tools: HttpToolServer;
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  const seenBy = new Map<Page, ReturnType<typeof recordPage>>();

  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    tools = startHttpToolServer();
    const toolsFile = writeHttpToolsFile(
      tools.url,
      { lookup: '/echo', guarded: '/echo' },
      { approval: ['guarded'] },
    );
    t = await startTestApp({
      listen: true,
      env: { OPENAI_BASE_URL: llm.url, TOOLS_FILE: toolsFile },
    });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await llm.stop();
    tools.stop();
  });

  const open = async (path: string, baseUrl = t.baseUrl) => {
    const page = await context.newPage();
    seenBy.set(page, recordPage(page, `${baseUrl}`));
    await page.goto(`${baseUrl}${path}`);
    return page;
  };

  /** Offline-clean: the page asked no other host for anything and logged no error. */
  const done = async (page: Page, expectedErrors: RegExp[] = []) => {
    const seen = seenBy.get(page);
    expect(seen?.outside).toEqual([]);
    expect(seen?.errors.filter((e) => !expectedErrors.some((re) => re.test(e)))).toEqual([]);
    await page.close();
  };

  const messageBox = (page: Page) => page.getByRole('textbox', { name: 'Message', exact: true });

  /** A new thread through the console's own button; its id from the URL. */
  const newThread = async (page: Page) => {
    await page.getByRole('button', { name: 'New thread' }).click();
    await page.waitForURL(/\/console\/threads\/thr_/);
    return decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  };

  test('post a message and see the reply stream in, then stored in the conversation', async () => {
    const chunks = ['Streaming ', 'one ', 'word ', 'at ', 'a ', 'time.'];
    llm.enqueue({ kind: 'stream', chunks, delayMs: 150 });
    const page = await open('/console');
    const threadId = await newThread(page);
    await messageBox(page).fill('Tell me something slowly');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    // Part of the reply shows while the model still writes the rest.
    const live = page.locator('[data-live-run] .streaming');
    await live.filter({ hasText: 'Streaming one' }).waitFor();
    expect((await live.textContent()) ?? '').not.toContain('time.');
    await page.screenshot({ path: screenshotPath('console-streaming'), fullPage: true });
    // Done: the stored reply, once, in order after the user's message.
    const reply = page.locator('.message.assistant .reply', { hasText: chunks.join('') });
    await reply.waitFor();
    await page.locator('[data-live-run]').waitFor({ state: 'detached' });
    expect(await page.locator('.messages .bubble').allTextContents()).toEqual([
      'Tell me something slowly',
      chunks.join(''),
    ]);
    await page.screenshot({ path: screenshotPath('console-reply'), fullPage: true });
    // The thread list has it, idle again.
    const item = page.locator(`[data-thread-id="${threadId}"]`);
    await item.filter({ hasText: 'idle' }).waitFor();
    await done(page);
  });

  test('a tool call shows as a card with its result; the run page shows the timeline and memory', async () => {
    const page = await open('/console');
    await newThread(page);
    await page.getByRole('checkbox', { name: 'lookup' }).check();
    await messageBox(page).fill('look it up [[tool:lookup {"q":"console"}]]');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const card = page.locator('.messages .tool-card', { hasText: 'lookup' });
    await card.filter({ hasText: '"received"' }).waitFor();
    expect(await card.textContent()).toContain('"q": "console"');
    await page.locator('.messages .reply', { hasText: 'echo: lookup said' }).waitFor();
    await page.screenshot({ path: screenshotPath('console-tool-card'), fullPage: true });

    // The run's own page: every event with its attempt, the budget report, the usage.
    await page.getByRole('link', { name: 'run completed' }).click();
    await page.waitForURL(/\/console\/runs\/run_/);
    const rows = page.locator('.timeline tbody tr');
    await rows.filter({ hasText: 'run.completed' }).waitFor();
    const types = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-type')));
    expect(types.filter((type) => type !== 'agent.run.delta')).toEqual([
      'agent.run.requested',
      'agent.run.started',
      'agent.run.tool_called',
      'agent.run.tool_result',
      'agent.run.completed',
    ]);
    expect(await rows.filter({ hasText: 'run.started' }).locator('td').nth(1).textContent()).toBe(
      '1',
    );
    await page.getByRole('table', { name: 'Memory budget' }).getByText('context window').waitFor();
    await page.getByText(/\d+ prompt \+ \d+ completion = \d+ tokens/).waitFor();
    await page.screenshot({ path: screenshotPath('console-timeline'), fullPage: true });
    await done(page);
  });

  test('a tool that needs approval: approve it in the conversation, and the run goes on', async () => {
    const page = await open('/console');
    await newThread(page);
    await page.getByRole('checkbox', { name: /guarded/ }).check();
    await messageBox(page).fill('carefully [[tool:guarded {"q":"approve me"}]]');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByRole('region', { name: 'Approval needed' }).waitFor();
    await page.screenshot({ path: screenshotPath('console-approval'), fullPage: true });
    await page.getByRole('button', { name: 'Approve guarded' }).click();
    await page.getByRole('button', { name: 'Send decisions' }).click();
    await page.locator('.messages .reply', { hasText: 'echo: guarded said' }).waitFor();
    expect(tools.calls.some((call) => call.body.includes('approve me'))).toBe(true);
    await done(page);
  });

  test('cancel a running run from its page', async () => {
    llm.enqueue({ kind: 'stall' });
    const page = await open('/console');
    await newThread(page);
    const before = llm.requests.length;
    await messageBox(page).fill('this will stall');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await llm.waitForRequests(before + 1);
    await page.getByRole('link', { name: 'run running' }).click();
    await page.waitForURL(/\/console\/runs\/run_/);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('.timeline tr[data-type="agent.run.cancelled"]').waitFor();
    await page.locator('.run-page .status', { hasText: 'cancelled' }).waitFor();
    await page.getByText('by client: cancelled in the console').first().waitFor();
    await done(page);
  });

  test('two tabs on one thread stay in step', async () => {
    const a = await open('/console');
    const threadId = await newThread(a);
    const b = await open(`/console/threads/${threadId}`);
    await b.getByRole('heading', { name: threadId, exact: true }).waitFor();
    llm.enqueue({ kind: 'stream', chunks: ['seen ', 'in ', 'both ', 'tabs'], delayMs: 100 });
    await messageBox(a).fill('hello from tab A');
    await a.getByRole('button', { name: 'Send', exact: true }).click();
    // Tab B, which did nothing, shows the message and the reply from the thread's feed.
    await b.locator('.messages .user', { hasText: 'hello from tab A' }).waitFor();
    await b.locator('.messages .reply', { hasText: 'seen in both tabs' }).waitFor();
    await a.locator('.messages .reply', { hasText: 'seen in both tabs' }).waitFor();
    // A rename in A shows in B's header once B reloads the thread (its next event or a focus).
    await a.getByRole('button', { name: 'Rename' }).click();
    await a.getByLabel('Title').fill('Shared thread');
    await a.getByRole('button', { name: 'Save title' }).click();
    await a.getByRole('heading', { name: 'Shared thread' }).waitFor();
    await a.locator(`[data-thread-id="${threadId}"]`, { hasText: 'Shared thread' }).waitFor();
    await done(a);
    await done(b);
  });

  test('a dropped feed resumes after the last event: no line twice, none missing', async () => {
    const port = Number(new URL(t.baseUrl ?? '').port);
    const proxy = startTcpProxy({ hostname: '127.0.0.1', port });
    try {
      const chunks = Array.from({ length: 12 }, (_, i) => `part${i} `);
      llm.enqueue({ kind: 'stream', chunks, delayMs: 120 });
      const { body } = await t.post({ content: 'a long answer please' });
      const page = await open(`/console/runs/${body.runId}`, proxy.url);
      const feedRequests: (string | undefined)[] = [];
      page.on('request', (request) => {
        if (request.url().endsWith(`/runs/${body.runId}/events`)) {
          feedRequests.push(request.headers()['last-event-id']);
        }
      });
      const deltas = page.locator('.timeline tr[data-type="agent.run.delta"]');
      await deltas.nth(2).waitFor();
      proxy.dropAll();
      await page.locator('.timeline tr[data-type="agent.run.completed"]').waitFor();
      const ids = await page
        .locator('.timeline tbody tr')
        .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
      expect(new Set(ids).size).toBe(ids.length);
      const texts = await deltas.evaluateAll((trs) =>
        trs.map((tr) => tr.lastElementChild?.textContent),
      );
      expect(texts.map((text) => JSON.parse(text ?? '""')).join('')).toBe(chunks.join(''));
      // It reconnected, naming the last event it had.
      expect(feedRequests.length).toBeGreaterThanOrEqual(1);
      expect(feedRequests.slice(1).every((id) => id && ids.includes(id))).toBe(true);
      // The one error: the connection the proxy cut.
      await done(page, [/ERR_INCOMPLETE_CHUNKED_ENCODING .*\/events\)$/]);
    } finally {
      proxy.stop();
    }
  });
});
