//! Real Chromium for the dashboard tests, the server they open, and the helpers every test file
//! shares: opening the dashboard, reading figures off the page next to the API's own answers,
//! screenshots. Each test file gets its own real `cdp serve` (see cdp-serve.mjs): seeded through
//! `/collect`, empty, or on Postgres behind a proxy the test can cut; only `formats.test.mjs` uses
//! the fixture server in site.mjs. Each test gets a fresh browser context (its own cookies and
//! storage) in UTC and en-US, so the page's dates and numbers read the same on every machine.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { openFixtureSite } from './site.mjs';
import { ADMIN_TOKEN, assertServesCurrentDashboard, freshPostgres, getJson, seed, startCdpServe } from './cdp-serve.mjs';

/**
 * Which server the suite drives: `cdp serve` (the default), or the Worker in workerd with
 * `CDP_DASHBOARD_TARGET=worker` (worker/test.sh runs the server files that way, with what the
 * Worker needs built: see worker/dashboard-target.js).
 */
export const TARGET = process.env.CDP_DASHBOARD_TARGET || 'cdp-serve';
if (!['cdp-serve', 'worker'].includes(TARGET)) throw new Error(`CDP_DASHBOARD_TARGET must be cdp-serve or worker, not '${TARGET}'`);

/**
 * The Worker as the server of `kind` (every kind on a fresh Postgres database, which the Worker
 * always reads). Its store going away is the database refusing connections: each Worker read
 * connects anew, and miniflare's Hyperdrive proxy cannot survive a cut socket, so the proxy's
 * `cut()` / `restore()` mean refusing and allowing connections here.
 */
async function startWorkerTarget(h) {
  h.pg = await freshPostgres();
  const { startWorkerServer } = await import('../../worker/dashboard-target.js');
  const server = await startWorkerServer({ databaseUrl: h.pg.directUrl, token: ADMIN_TOKEN });
  server.api = (p) => getJson(server.origin, p, ADMIN_TOKEN);
  const pg = h.pg;
  pg.proxy = { cut: () => pg.refuseConnections(), restore: () => pg.allowConnections() };
  return server;
}

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

/**
 * Registers the hooks of a test file; the returned object is filled in as they run. `kind` is the
 * server the file runs against:
 * - `seeded`: a real `cdp serve` (embedded SQLite) seeded through `/collect` by `cdp demo`;
 * - `empty`: a real `cdp serve` that has never received an event;
 * - `postgres`: a real `cdp serve` on a fresh Postgres database reached through a TCP proxy
 *   (`h.pg.proxy.cut()` / `.restore()`), seeded like `seeded`;
 * - `fixtures`: the fixture server (site.mjs), for figures no real traffic produces on demand.
 *
 * With `CDP_DASHBOARD_TARGET=worker` the three server kinds get the Worker instead of `cdp
 * serve` (see `startWorkerTarget`), seeded the same way through its `/collect`.
 */
export function useHarness(kind) {
  const h = { kind, site: null, server: null, pg: null, seededEvents: 0, browser: null, contexts: [] };
  before(
    async () => {
      if (!existsSync(CHROMIUM)) {
        throw new Error(`no Chromium at ${CHROMIUM}: run 'apt-get install -y chromium' (or set CHROMIUM_PATH)`);
      }
      if (kind === 'fixtures') {
        h.site = await openFixtureSite();
      } else {
        if (!['seeded', 'empty', 'postgres'].includes(kind)) throw new Error(`no server kind '${kind}'`);
        if (TARGET === 'worker') {
          h.server = await startWorkerTarget(h);
        } else {
          if (kind === 'postgres') h.pg = await freshPostgres();
          h.server = await startCdpServe({ databaseUrl: h.pg?.url ?? null });
        }
        await assertServesCurrentDashboard(h.server);
        if (kind !== 'empty') h.seededEvents = await seed(h.server);
        h.site = { fixtures: false, origin: h.server.origin, token: h.server.token, api: h.server.api, backend: h.server.backend };
      }
      h.browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await h.browser?.close();
    await h.site?.close?.();
    await h.server?.close();
    await h.pg?.drop();
  });
  beforeEach(() => {
    h.pg?.proxy.restore();
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

/** Answer fields that name the moment an answer was made rather than what it counts. */
const MOMENT = new Set(['generated_at', 'window', 'as_of', 'age_hours']);

/** `body` without the fields in MOMENT, at any depth. */
export function figuresOf(body) {
  if (Array.isArray(body)) return body.map(figuresOf);
  if (body === null || typeof body !== 'object') return body;
  return Object.fromEntries(Object.entries(body).filter(([k]) => !MOMENT.has(k)).map(([k, v]) => [k, figuresOf(v)]));
}

/**
 * Reads the API `paths` (with the admin token), runs `look` (which reads the page), and reads the
 * API again. A real server's windows end "now", so an event can leave a window while the test
 * looks; when the two reads differ the whole look is repeated (at most three times). Returns the
 * API bodies, in `paths` order, and what `look` returned, which were taken while the API answered
 * the same figures throughout.
 */
export async function consistentRead(h, paths, look) {
  const read = () => Promise.all(paths.map((p) => h.site.api(p)));
  for (let attempt = 1; ; attempt++) {
    const first = await read();
    const seen = await look();
    const second = await read();
    const same = JSON.stringify(first.map((r) => figuresOf(r.body))) === JSON.stringify(second.map((r) => figuresOf(r.body)));
    if (same) {
      for (const [i, r] of first.entries()) {
        if (r.status !== 200) throw new Error(`${paths[i]} answered ${r.status}: ${JSON.stringify(r.body)}`);
      }
      return { bodies: first.map((r) => r.body), seen };
    }
    if (attempt === 3) throw new Error(`the API kept changing while the test read the page: ${paths.join(', ')}`);
  }
}

/** Waits until the page has left the loading state and is in `state`. */
export async function waitForState(page, state) {
  await page.locator(`main[data-state="${state}"]`).waitFor({ timeout: 15000 });
}

/** What the page must not show when it has no figures to show. */
export async function assertNoFigures(page) {
  for (const selector of ['[data-testid="figures"]', '[data-testid^="kpi-"]', '[data-testid="stream-row"]', '[data-testid="funnel-row"]', '[data-testid="loading"]']) {
    assert.equal(await page.locator(selector).count(), 0, `no ${selector}`);
  }
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
  words: (id) => id.replace(/[_-]+/g, ' '),
};
