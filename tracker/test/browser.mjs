//! Real Chromium for the browser tests, the page every test site is built from, and the polling
//! helper. Each test gets a fresh browser context (its own cookies and storage, so a new visitor) and
//! a collector that has been reset to answering 200.

import { after, afterEach, before, beforeEach } from 'node:test';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startCollector } from './collector.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Registers the hooks of a test file; the returned object is filled in as they run. */
export function useHarness() {
  const h = { collector: null, browser: null, context: null };
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: run 'apt-get install -y chromium' (or set CHROMIUM_PATH)`);
    }
    h.collector = await startCollector();
    h.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await h.browser?.close();
    await h.collector?.close();
  });
  beforeEach(async () => {
    await h.collector.start();
    h.collector.reset();
    h.context = await h.browser.newContext();
  });
  afterEach(async () => {
    await h.context.close();
    // Let any beacon sent while the pages closed land before the next test resets the record.
    await sleep(300);
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
 * A page of the test site. It stubs the existing pixel (`pixel: 'record' | 'throw' | null`), records
 * in `window.__log`, in order, every pixel call and every request the tracker makes to the collector,
 * and has a `#buy` button whose handler tracks a click and then updates `#out`, so a test can tell
 * that the page kept working.
 */
export function sitePage(
  collector,
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
<script async src="${collector.endpoint}/cdp.js"${dataEndpoint ? ` data-endpoint="${collector.endpoint}"` : ''}></script>
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

/** How many 2xx-answered requests carried each event id. */
export function deliveryCounts(collector) {
  const counts = new Map();
  for (const event of collector.delivered()) counts.set(event.event_id, (counts.get(event.event_id) || 0) + 1);
  return counts;
}

/** Our localStorage keys and the shared visitor cookie, to show what the tracker stored. */
export async function storedByTracker(page) {
  const keys = await page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith('cdp_')).sort());
  const cookies = (await page.context().cookies()).map((cookie) => cookie.name);
  return { keys, cookies };
}
