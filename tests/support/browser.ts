import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = join(import.meta.dir, '..', 'browser', 'artifacts');

/** Browser tests need Debian's Chromium; without it they are skipped with a notice. */
export const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable && process.env.RUN_BROWSER_TESTS === 'true') {
  throw new Error(`RUN_BROWSER_TESTS=true but there is no Chromium at ${CHROMIUM}`);
}
if (!chromiumAvailable) {
  console.warn(
    `\n⚠ Browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it).\n`,
  );
}

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

export const screenshotPath = (name: string) => join(ARTIFACTS, `${name}.png`);

/**
 * What a page did, for tests that hold it to "offline-clean": every request to a host other than
 * the server at `baseUrl`, every console error and uncaught exception, and the status of every
 * response.
 */
export function recordPage(page: Page, baseUrl: string) {
  const origin = new URL(baseUrl).origin;
  const outside: string[] = [];
  const errors: string[] = [];
  const responses: { url: string; status: number }[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.origin !== origin) outside.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('response', (response) =>
    responses.push({ url: response.url(), status: response.status() }),
  );
  return { outside, errors, responses };
}
