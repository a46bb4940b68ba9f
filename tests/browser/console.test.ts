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
    // The call shows once: as the live run's card (the stored messages leave a live run's out).
    const cards = page.locator('article.tool-card', { hasText: 'guarded' });
    await cards.first().waitFor(); // its tool_called may come a moment after the run view says it waits
    expect(await cards.count()).toBe(1);
    await page.screenshot({ path: screenshotPath('console-approval'), fullPage: true });
    await page.getByRole('button', { name: 'Approve guarded' }).click();
    await page.getByRole('button', { name: 'Send decisions' }).click();
    await page.locator('.messages .reply', { hasText: 'echo: guarded said' }).waitFor();
    await page.locator('[data-live-run]').waitFor({ state: 'detached' });
    expect(await cards.count()).toBe(1);
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
    // While it runs, "When busy: reject" refuses a second message, with the API's code.
    await messageBox(page).fill('not now');
    await page.getByLabel('When busy').selectOption('reject');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'thread_busy' }).waitFor();
    await page.getByRole('link', { name: 'run running' }).click();
    await page.waitForURL(/\/console\/runs\/run_/);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('.timeline tr[data-type="agent.run.cancelled"]').waitFor();
    await page.locator('.run-page .status', { hasText: 'cancelled' }).waitFor();
    await page.getByText('by client: cancelled in the console').first().waitFor();
    expect(await page.title()).toMatch(/^Run run_\w+ \(cancelled\) · Console/);
    await done(page, [/status of 409/]);
  });

  test('a failed run: its error code in the conversation and on its page', async () => {
    llm.enqueue({ kind: 'status', status: 401 });
    const page = await open('/console');
    await newThread(page);
    await messageBox(page).fill('this will fail');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const link = page.getByRole('link', { name: 'run failed · llm_unauthorized' });
    await link.waitFor();
    await link.click();
    await page.locator('.facts .error code', { hasText: 'llm_unauthorized' }).waitFor();
    const failed = page.locator('.timeline tr[data-type="agent.run.failed"]');
    await failed.filter({ hasText: 'llm_unauthorized' }).waitFor();
    expect(await failed.locator('td').nth(1).textContent()).toBe('1'); // attempts spent
    await done(page);
  });

  test('two tabs on one thread stay in step', async () => {
    const a = await open('/console');
    const threadId = await newThread(a);
    const b = await open(`/console/threads/${threadId}`);
    await b.getByRole('heading', { name: threadId, exact: true }).waitFor();
    const chunks = ['seen ', 'in ', 'both ', 'tabs ', 'at ', 'once'];
    llm.enqueue({ kind: 'stream', chunks, delayMs: 200 });
    // A background tab's animation frames are throttled: the tab being used comes to the front.
    await a.bringToFront();
    await messageBox(a).fill('hello from tab A');
    await a.getByRole('button', { name: 'Send', exact: true }).click();
    // Tab B, which did nothing, shows the message and the reply streaming in, from the feeds.
    await b.bringToFront();
    await b.locator('.messages .user', { hasText: 'hello from tab A' }).waitFor();
    const streaming = b.locator('[data-live-run] .streaming', { hasText: 'seen in' });
    await streaming.waitFor();
    expect(await streaming.textContent()).not.toContain('once');
    await b.locator('.messages .reply', { hasText: chunks.join('') }).waitFor();
    await a.bringToFront();
    await a.locator('.messages .reply', { hasText: chunks.join('') }).waitFor();
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

  test('a finished run whose feed expired: the reset shows the run as stored, once', async () => {
    const { body } = await t.post({ content: 'soon forgotten' });
    await t.events.waitForTerminal(body.runId);
    // As RUN_FEED_TTL_S after the end would: the run's own stream is gone.
    await t.deps.redis.del(`${t.config.redis.streamKey}:run:${body.runId}`);
    const page = await context.newPage();
    seenBy.set(page, recordPage(page, `${t.baseUrl}`));
    let feeds = 0;
    page.on('request', (request) => {
      if (request.url().endsWith(`/runs/${body.runId}/events`)) feeds += 1;
    });
    await page.goto(`${t.baseUrl}/console/runs/${body.runId}`);
    await page.locator('.timeline tr[data-type="agent.feed.reset"]').waitFor();
    await page.locator('[data-run-reply]', { hasText: 'echo: soon forgotten' }).waitFor();
    await page.locator('.run-page .status', { hasText: 'completed' }).waitFor();
    expect(await page.locator('.timeline tbody tr').count()).toBe(1);
    // The reset carried a finished run: the feed is over, not asked again and again.
    await page.locator('[data-feed="ended"]').waitFor();
    expect(feeds).toBe(1);
    await done(page);
  });

  test('a double click on Send sends one message (one Idempotency-Key, one run)', async () => {
    const page = await open('/console');
    const threadId = await newThread(page);
    const keys: (string | undefined)[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/api/chat/messages'))
        keys.push(request.headers()['idempotency-key']);
    });
    await messageBox(page).fill('only once');
    await page.getByRole('button', { name: 'Send', exact: true }).dblclick();
    await page.locator('.messages .reply', { hasText: 'echo: only once' }).waitFor();
    const runs = await t.get(`/api/chat/threads/${threadId}/runs`);
    expect(runs.body.runs).toHaveLength(1);
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^console-[0-9a-f]{32}$/);
    await done(page);
  });

  test('answer a client tool from the run page', async () => {
    const { body } = await t.post({
      content: 'pick one [[tool:pick_color {"from":"palette"}]]',
      clientTools: [{ name: 'pick_color', parameters: { type: 'object' } }],
    });
    const page = await open(`/console/runs/${body.runId}`);
    await page.getByLabel('Output of pick_color').fill('blue');
    await page.getByRole('button', { name: 'Send outputs' }).click();
    await page.locator('[data-run-reply]', { hasText: 'echo: pick_color said blue' }).waitFor();
    await page.locator('.run-page .status', { hasText: 'completed' }).waitFor();
    await page.locator('.timeline tr[data-type="agent.run.requires_action"]').waitFor();
    await done(page);
  });

  test('rename and delete a thread; a deep link to it then says it is gone', async () => {
    const page = await open('/console');
    const threadId = await newThread(page);
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Title').fill('Short-lived');
    await page.getByRole('button', { name: 'Save title' }).click();
    await page.locator(`[data-thread-id="${threadId}"]`, { hasText: 'Short-lived' }).waitFor();
    await page.getByRole('button', { name: 'Delete thread' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.waitForURL(/\/console$/);
    await page.locator(`[data-thread-id="${threadId}"]`).waitFor({ state: 'detached' });
    expect((await t.get(`/api/chat/threads/${threadId}`)).status).toBe(404);
    await page.goto(`${t.baseUrl}/console/threads/${threadId}`);
    await page.getByText(`There is no thread ${threadId}`).waitFor();
    await done(page, [/status of 404/]);
  });

  test('the keyboard alone: new thread, a message, its run; every button has a name', async () => {
    const page = await open('/console');
    /** Presses Tab until `target` has the focus (at most 40 times). */
    const tabTo = async (target: ReturnType<Page['locator']>) => {
      for (let i = 0; i < 40; i++) {
        if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) return;
        await page.keyboard.press('Tab');
      }
      throw new Error('Tab never reached the element');
    };
    await tabTo(page.getByRole('button', { name: 'New thread' }));
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/threads\/thr_/);
    await tabTo(messageBox(page));
    await page.keyboard.type('typed, not clicked');
    await page.keyboard.press('Control+Enter');
    await page.locator('.messages .reply', { hasText: 'echo: typed, not clicked' }).waitFor();
    await tabTo(page.getByRole('link', { name: 'run completed' }));
    await page.keyboard.press('Enter');
    await page.locator('.timeline tr[data-type="agent.run.completed"]').waitFor();

    // Every button and form control on each page is announced with a name.
    for (const path of ['/console', page.url().replace(t.baseUrl ?? '', '')]) {
      await page.goto(`${t.baseUrl}${path}`);
      await page.getByRole('button', { name: 'New thread' }).waitFor();
      const tree = await page.locator('body').ariaSnapshot();
      expect(tree).not.toMatch(/- (button|textbox|checkbox|combobox)(?! ")/);
    }
    await done(page);
  });

  test('the thread list pages: 50 at first, More threads for the rest', async () => {
    for (let i = 0; i < 51; i++) {
      const created = await t.request('/api/chat/threads', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: { batch: 'paging', n: String(i) } }),
      });
      expect(created.status).toBe(201);
    }
    const total = (await t.get('/api/chat/threads?limit=100')).body.threads.length;
    const page = await open('/console');
    const items = page.locator('nav[aria-label="Threads"] li');
    await items.nth(49).waitFor();
    expect(await items.count()).toBe(50);
    await page.getByText('batch=paging · n=50').waitFor();
    await page.getByRole('button', { name: 'More threads' }).click();
    await items.nth(total - 1).waitFor();
    expect(await items.count()).toBe(total);
    await done(page);
  });
});
