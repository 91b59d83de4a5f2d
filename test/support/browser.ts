/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core (its own
 * browser download cannot work here). Without Chromium a suite is skipped with a message, except in CI
 * (process.env.CI set, as .ci/run does), where it fails: .ci/run installs Chromium first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { ROOT } from './server';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM_ARGS = ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

const haveChromium = fs.existsSync(CHROMIUM);
const inCI = Boolean(process.env.CI);

/** `describe` where Chromium is installed or in CI; elsewhere `describe.skip` with a warning naming the suite. */
export function describeInBrowser(name: string, fn: () => void): void {
  if (!haveChromium && !inCI) {
    console.warn(`${name}: SKIPPED, ${CHROMIUM} is missing (install it with: apt-get install chromium). In CI it fails instead.`);
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** uncaught page errors (tests may add their own findings) */
  pageErrors: string[];
  close: () => Promise<void>;
}

/** A fresh profile, the init scripts installed before the first page loads, and test-artifacts/ ready. */
export async function launchBrowser(opts: { viewport: { width: number; height: number }; initScripts?: ({ content: string } | { path: string })[] }): Promise<Browser> {
  if (!haveChromium) throw new Error(`${CHROMIUM} is missing: CI must install Chromium before the tests (.ci/run does: apt-get install chromium)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-chromium-'));
  // headless comes from CHROMIUM_ARGS ('--headless=new'), so Playwright must not add its own flag
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: false, viewport: opts.viewport });
  for (const script of opts.initScripts ?? []) await context.addInitScript(script);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  return {
    context,
    page,
    pageErrors,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Evaluate an expression in the page. A string goes through the DevTools protocol; Playwright's
 * waitForFunction would eval() inside the page, which the pages' Content-Security-Policy refuses.
 */
export function read<T>(target: Page | Frame, expression: string): Promise<T> {
  return target.evaluate<T>(expression);
}

/** Poll `expression` until it is true; on timeout the error names it, plus `explain()` when given. */
export async function waitUntil(
  target: Page | Frame,
  expression: string,
  opts: { timeoutMs?: number; pollMs?: number; explain?: () => Promise<string> } = {},
): Promise<void> {
  const { timeoutMs = 45_000, pollMs = 20 } = opts;
  const deadline = Date.now() + timeoutMs;
  while (!(await read<boolean>(target, expression))) {
    if (Date.now() > deadline) {
      const why = opts.explain ? ` (${await opts.explain()})` : '';
      throw new Error(`still false after ${timeoutMs} ms: ${expression}${why}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
