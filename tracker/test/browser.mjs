//! Real Chromium for the browser tests, the real collector, the page every test site is built from,
//! and the polling helpers.
//!
//! Each test file gets one browser, one test site (its own origin) and one pass-through proxy. Each
//! test gets a fresh `cdp serve` (its own port and data dir, so its own SQLite store) and a fresh
//! browser context (its own cookies and storage, so a new visitor). A page talks to `cdp serve`
//! directly when built with `sitePage(h.server.endpoint)`, or through the proxy with
//! `sitePage(h.proxy.endpoint)` when the test needs to see the requests or to stage a 503 or 400.

import { after, afterEach, before, beforeEach } from 'node:test';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { assertServesCurrentTracker, cdpBinary, startCdpServe } from './cdp-serve.mjs';
import { startProxy } from './proxy.mjs';
import { startSite } from './site.mjs';
import { storedRows } from './store.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The milliseconds a UUID v7 starts with. */
export function uuid7Millis(id) {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/**
 * Registers the hooks of a test file; the returned object is filled in as they run:
 * `site`, `proxy`, `browser` for the file, `server` (the running `cdp serve`) and `context` per test,
 * and `stored()`, the rows the current test's server has stored.
 */
export function useHarness() {
  const h = {
    site: null,
    proxy: null,
    server: null,
    browser: null,
    context: null,
    stored: () => storedRows(h.server.dbPath),
  };
  const closing = [];
  let checkedTracker = false;
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: run 'apt-get install -y chromium' (or set CHROMIUM_PATH)`);
    }
    cdpBinary(); // Builds the collector now when CDP_BIN does not name one; throws if that fails.
    h.site = await startSite();
    h.proxy = await startProxy();
    h.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await h.browser?.close();
    await h.proxy?.close();
    await h.site?.close();
    await Promise.all(closing);
  });
  beforeEach(async () => {
    h.server = null;
    h.server = await startCdpServe({ allowedOrigins: [h.site.origin] });
    if (!checkedTracker) {
      await assertServesCurrentTracker(h.server);
      checkedTracker = true;
    }
    h.proxy.reset(h.server.endpoint);
    h.context = await h.browser.newContext();
  });
  afterEach(async () => {
    await h.context?.close();
    // Let any beacon sent while the pages closed land, then stop this test's collector. The next test
    // starts its own at once; this one finishes its graceful stop meanwhile.
    await sleep(300);
    if (h.server) closing.push(h.server.close());
  });
  return h;
}

/** Opens a page and collects its uncaught errors: the tracker must never add any. */
export async function openPage(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.goto(url);
  return { page, errors };
}

/**
 * A page of the test site whose tracker sends to `endpoint` (`h.server.endpoint` for `cdp serve`
 * itself, `h.proxy.endpoint` for the proxy in front of it) and loads `cdp.js` from there. It stubs
 * the existing pixel (`pixel: 'record' | 'throw' | null`), records in `window.__log`, in order, every
 * pixel call and every request the tracker makes to the collector, and has a `#buy` button whose
 * handler tracks a click and then updates `#out`, so a test can tell that the page kept working.
 */
export function sitePage(
  endpoint,
  { title = 'Test shop', config = null, dataEndpoint = true, pixel = 'record', snippet = [] } = {},
) {
  const pixelStub = pixel
    ? `window.pdPixel = { track: function (event, properties) {
         window.__log.push({ kind: 'pixel', event: event, same: properties === window.__lastProps,
           properties: properties === undefined ? null : JSON.parse(JSON.stringify(properties)) });
         ${pixel == 'throw' ? "throw new Error('the pixel broke');" : ''}
       } };`
    : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<script>
  window.__log = [];
  ${pixelStub}
  (function () {
    var realFetch = window.fetch;
    if (realFetch) window.fetch = function (url, init) {
      if (String(url).indexOf('/collect') >= 0) {
        window.__log.push({ kind: 'send', via: 'fetch', events: JSON.parse(init.body) });
      }
      return realFetch.apply(this, arguments);
    };
    var realBeacon = navigator.sendBeacon && navigator.sendBeacon.bind(navigator);
    if (realBeacon) navigator.sendBeacon = function (url, data) {
      var entry = { kind: 'send', via: 'beacon', events: null };
      window.__log.push(entry);
      data.text().then(function (text) { entry.events = JSON.parse(text); });
      return realBeacon(url, data);
    };
  })();
  ${config ? `window.cdpConfig = ${JSON.stringify(config)};` : ''}
  window.cdp = window.cdp || [];
  ${snippet.map((call) => `cdp.push(${JSON.stringify(call)});`).join('\n  ')}
</script>
<script async src="${endpoint}/cdp.js"${dataEndpoint ? ` data-endpoint="${endpoint}"` : ''}></script>
</head><body>
<button id="buy" onclick="buy()">Buy</button> <output id="out">0</output>
<a id="away" href="/blank">Elsewhere</a>
<script>
  var clicks = 0;
  function buy() {
    clicks++;
    var properties = { product_id: 'p' + clicks };
    window.__lastProps = properties;
    cdp.track('product_clicked', properties);
    document.getElementById('out').textContent = String(clicks);
  }
</script>
</body></html>`;
}

/** Polls `probe` until it returns something truthy, and returns that. */
export async function waitFor(what, probe, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the current test's `cdp serve` has stored at least `count` events; returns the rows. */
export function waitForStored(h, count, timeoutMs = 10000) {
  return waitFor(
    `${count} stored event${count == 1 ? '' : 's'}`,
    () => {
      const rows = h.stored();
      return rows.length >= count && rows;
    },
    timeoutMs,
  );
}

/** Every event this page has handed to fetch or sendBeacon for the collector, in order, repeats included. */
export function sentEvents(page) {
  return page.evaluate(() => window.__log.filter((e) => e.kind == 'send').flatMap((e) => e.events || []));
}

/** The existing pixel's calls on this page, as `[event, properties]`. */
export function pixelCalls(page) {
  return page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').map((e) => [e.event, e.properties]));
}

/** How many requests that the proxy saw answered 2xx carried each event id. */
export function deliveryCounts(proxy) {
  const counts = new Map();
  for (const event of proxy.delivered()) counts.set(event.event_id, (counts.get(event.event_id) || 0) + 1);
  return counts;
}

/** Our localStorage keys and the shared visitor cookie, to show what the tracker stored. */
export async function storedByTracker(page) {
  const keys = await page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith('cdp_')).sort());
  const cookies = (await page.context().cookies()).map((cookie) => cookie.name);
  return { keys, cookies };
}
