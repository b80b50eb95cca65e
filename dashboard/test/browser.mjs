//! Real Chromium for the dashboard tests, the site they open, and the helpers every test file
//! shares: opening the dashboard with a fixed clock, reading figures off the page, screenshots.
//! Each test gets a fresh browser context (its own cookies and storage) in UTC and en-US, so the
//! page's dates and numbers read the same on every machine.

import { after, afterEach, before, beforeEach } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { openSite } from './site.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Screenshots go to `test/output/` unless `CDP_SCREENSHOT_DIR` says otherwise
 * (`npm run screenshots` points it at `docs/screenshots/`).
 */
const SCREENSHOTS = resolve(HERE, '..', process.env.CDP_SCREENSHOT_DIR || 'test/output');

/**
 * The fixtures were generated at 2026-03-08 12:00 UTC; against them the page's clock starts half
 * a minute later, so "X ago" labels read as they would live. Against a real server the clock is
 * the real time.
 */
const FIXTURE_NOW = new Date('2026-03-08T12:00:30.000Z');

export const VIEWPORT = { width: 1440, height: 1000 };

/** Registers the hooks of a test file; the returned object is filled in as they run. */
export function useHarness() {
  const h = { site: null, browser: null, contexts: [] };
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: run 'apt-get install -y chromium' (or set CHROMIUM_PATH)`);
    }
    h.site = await openSite();
    h.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await h.browser?.close();
    await h.site?.close();
  });
  beforeEach(() => {
    if (h.site?.fixtures) h.site.use(null, 'seeded');
  });
  afterEach(async () => {
    for (const context of h.contexts.splice(0)) await context.close();
  });
  return h;
}

/**
 * Opens the dashboard in a new context. `auth: false` leaves out the admin token (for the
 * sign-in state); `hash` opens a route such as `#/visitor/<id>`. Returns the page, the uncaught
 * errors it raised, and every API request it made (method and path with query).
 */
export async function openDashboard(h, { auth = true, hash = '', beforeLoad = null } = {}) {
  const headers = auth && h.site.token ? { Authorization: `Bearer ${h.site.token}` } : {};
  const context = await h.browser.newContext({
    viewport: VIEWPORT,
    timezoneId: 'UTC',
    locale: 'en-US',
    extraHTTPHeaders: headers,
  });
  h.contexts.push(context);
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (error) => errors.push(error));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith('/api/cdp/') || url.pathname === '/health') requests.push(url.pathname + url.search);
  });
  await page.clock.install({ time: h.site.fixtures ? FIXTURE_NOW : new Date() });
  if (beforeLoad) await beforeLoad(page);
  await page.goto(`${h.site.origin}/admin/cdp/${hash}`);
  return { page, errors, requests };
}

/** Waits until the page has left the loading state and is in `state`. */
export async function waitForState(page, state) {
  await page.locator(`main[data-state="${state}"]`).waitFor({ timeout: 15000 });
}

/** The trimmed text of every element matching `selector`, in page order. */
export async function texts(page, selector) {
  return (await page.locator(selector).allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim());
}

/** The trimmed text of the one element matching `selector`. */
export async function text(page, selector) {
  const t = await page.locator(selector).textContent({ timeout: 5000 });
  return (t ?? '').replace(/\s+/g, ' ').trim();
}

/**
 * Saves a PNG of the page as `dashboard-<name>.png`, at `height` (a full-page picture grows past
 * it to fit the content), scrolled to the top.
 */
export async function screenshot(page, name, { fullPage = true, height = VIEWPORT.height } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.setViewportSize({ width: VIEWPORT.width, height });
  await page.evaluate(() => window.scrollTo(0, 0));
  // Charts draw on the next frames; let them settle so the picture shows them.
  await page.clock.runFor(1000);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(SCREENSHOTS, `dashboard-${name}.png`), fullPage });
}

const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/**
 * How the page writes API figures, restated here so the tests check the page against the API's
 * own numbers (en-US grouping, one decimal for percentages, a true minus sign for falls).
 */
export const expectText = {
  count: (n) => new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }).format(n),
  fraction: (f) => (f === null ? '—' : `${oneDecimal.format(f * 100)}%`),
  delta(kpi) {
    if (kpi.delta_pct === null) return kpi.value > 0 ? 'new' : '—';
    const text = oneDecimal.format(Math.abs(kpi.delta_pct));
    if (text === '0.0') return '0.0%';
    return `${kpi.delta_pct > 0 ? '+' : '\u2212'}${text}%`;
  },
  decimal: (n) => (n === null ? '—' : twoDecimals.format(n)),
};
