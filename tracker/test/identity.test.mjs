//! Who the visitor is: one anonymous id across pages and sessions, shared with the existing pixel's
//! cookie; sessions that end after 30 idle minutes and carry their campaign tags; and a tracker that
//! keeps working, and never throws into the page, when the browser withholds storage or APIs. Pages
//! talk to `cdp serve` directly; assertions read its SQLite store.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UUID_V4, UUID_V7, openPage, sentEvents, sitePage, sleep, useHarness, waitForStored } from './browser.mjs';
import { asEvent, assertEnriched, assertStoredAsSent, rowsPerEventId } from './store.mjs';

const h = useHarness();

const MINUTE_MS = 60 * 1000;

describe('identity', () => {
  test('one visitor keeps one anonymous id across pages and sessions; UTM tags last a session', async () => {
    const { site, server, context } = h;
    for (const path of ['/identity/a', '/identity/b', '/identity/c', '/identity/d']) {
      site.page(path, sitePage(server.endpoint));
    }
    // The browser clock is faked to step through an hour, but it stays in the past of the real clock,
    // within the 168 hours the collector accepts, so every page view is stored as it was timed.
    const t0 = Math.floor((Date.now() - 2 * 60 * MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
    const steps = [
      { path: '/identity/a?utm_source=ads&utm_campaign=fall', at: t0 },
      { path: '/identity/b', at: t0 + 10 * MINUTE_MS },
      { path: '/identity/c', at: t0 + 41 * MINUTE_MS },
      { path: '/identity/d?utm_medium=social', at: t0 + 50 * MINUTE_MS },
    ];
    const sent = [];
    for (const [i, step] of steps.entries()) {
      await context.clock.setFixedTime(step.at);
      const { page } = await openPage(context, site.url(step.path));
      await waitForStored(h, i + 1);
      sent.push(...(await sentEvents(page)));
    }
    const rows = h.stored();
    assertStoredAsSent(rows, sent);
    const views = rows.map(asEvent);

    const at = (offset) => new Date(t0 + offset * MINUTE_MS).toISOString();
    assert.deepEqual(
      views.map((e) => [e.event, e.timestamp, e.utm_source, e.utm_medium, e.utm_campaign]),
      [
        ['page_view', at(0), 'ads', undefined, 'fall'],
        ['page_view', at(10), 'ads', undefined, 'fall'],
        ['page_view', at(41), undefined, undefined, undefined],
        ['page_view', at(50), undefined, 'social', undefined],
      ],
    );
    const [a, b, c, d] = views.map((e) => e.session_id);
    assert.equal(a, b, 'ten minutes apart is one session');
    assert.notEqual(b, c, 'over thirty idle minutes starts a new session');
    assert.equal(c, d);
    assert.equal(new Set(views.map((e) => e.anonymous_id)).size, 1, 'one visitor throughout');
    assert.match(views[0].anonymous_id, UUID_V4);
    const cookie = (await context.cookies()).find((cookie) => cookie.name == 'pd_anonymous_id');
    assert.equal(views[0].anonymous_id, cookie.value);
  });

  test('a visitor who comes back in a new tab days later is the same visitor', async () => {
    const { site, server, context } = h;
    site.page('/identity/first', sitePage(server.endpoint));
    site.page('/identity/later', sitePage(server.endpoint));
    await context.clock.setFixedTime(Date.now() - 3 * 24 * 60 * MINUTE_MS);
    const first = await openPage(context, site.url('/identity/first'));
    await waitForStored(h, 1);
    await first.page.close();
    await context.clock.setFixedTime(Date.now());
    await openPage(context, site.url('/identity/later?utm_source=newsletter'));
    const rows = await waitForStored(h, 2);
    const [then, now] = rows.map(asEvent);
    assert.equal(now.anonymous_id, then.anonymous_id, 'one anonymous_id');
    assert.notEqual(now.session_id, then.session_id, 'a new session');
    assert.equal(now.utm_source, 'newsletter');
    assert.equal(then.utm_source, undefined);
    for (const row of rows) assertEnriched(row);
  });

  test("the existing pixel's pd_anonymous_id cookie is reused and left as it was", async () => {
    const { site, server, context } = h;
    site.page('/identity/legacy', sitePage(server.endpoint));
    await context.addCookies([{ name: 'pd_anonymous_id', value: 'pd-visitor-7', url: site.url('/') }]);
    const { page } = await openPage(context, site.url('/identity/legacy'));
    const rows = await waitForStored(h, 1);
    assertStoredAsSent(rows, await sentEvents(page));
    assert.equal(rows[0].anonymous_id, 'pd-visitor-7');
    const cookie = (await context.cookies()).find((c) => c.name == 'pd_anonymous_id');
    assert.equal(cookie.expires, -1, 'still the session cookie the pixel set');
  });

  // Each hostile browser is an init script run before any page script.
  const hostile = [
    {
      name: 'cookies are blocked',
      init: () => Object.defineProperty(Document.prototype, 'cookie', { get: () => '', set: () => {} }),
      delivers: true,
      // The id falls back to localStorage.
      stored: (page) => page.evaluate(() => localStorage.getItem('cdp_anonymous_id')),
    },
    {
      name: 'localStorage throws',
      init: () =>
        Object.defineProperty(window, 'localStorage', {
          get() {
            throw new DOMException('blocked', 'SecurityError');
          },
        }),
      delivers: true,
    },
    { name: 'crypto.randomUUID is missing', init: () => delete Crypto.prototype.randomUUID, delivers: true },
    { name: 'sendBeacon is missing', init: () => delete Navigator.prototype.sendBeacon, delivers: true },
    {
      name: 'fetch and sendBeacon are missing',
      init: () => {
        delete window.fetch;
        delete Navigator.prototype.sendBeacon;
      },
      delivers: false,
    },
  ];
  for (const browser of hostile) {
    test(`when ${browser.name}, the page keeps working and the visitor stays the same`, async () => {
      const { site, server, context } = h;
      site.page('/identity/hostile', sitePage(server.endpoint));
      await context.addInitScript(browser.init);
      const { page, errors } = await openPage(context, site.url('/identity/hostile'));
      await page.click('#buy');
      await page.reload();
      await page.click('#buy');
      assert.equal(await page.textContent('#out'), '1');
      const pixel = await page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').length);
      assert.equal(pixel, 2, 'the existing pixel still sees the page view and the click');
      assert.deepEqual(errors, []);
      if (!browser.delivers) {
        await sleep(1500);
        assert.deepEqual(h.stored(), [], 'with no transport there is nothing to send with');
        return;
      }

      const rows = await waitForStored(h, 4);
      // Anything resent by the reload has landed by now, and was not stored twice.
      await sleep(1000);
      assert.equal(h.stored().length, 4);
      assert.deepEqual([...rowsPerEventId(rows).values()], [1, 1, 1, 1]);
      const events = rows.map(asEvent);
      assert.deepEqual(
        events.map((e) => [e.event, e.properties]),
        [
          ['page_view', undefined],
          ['product_clicked', { product_id: 'p1' }],
          ['page_view', undefined],
          ['product_clicked', { product_id: 'p1' }],
        ],
      );
      for (const event of events) assert.match(event.event_id, UUID_V7);
      for (const row of rows) assertEnriched(row);
      assert.equal(new Set(events.map((e) => e.anonymous_id)).size, 1, 'one visitor across the reload');
      if (browser.stored) assert.equal(await browser.stored(page), events[0].anonymous_id);
    });
  }
});
