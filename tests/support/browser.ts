import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

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
