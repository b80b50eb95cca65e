//! Who the visitor is: one anonymous id across pages and sessions, shared with the existing pixel's
//! cookie; sessions that end after 30 idle minutes and carry their campaign tags; and a tracker that
//! keeps working, and never throws into the page, when the browser withholds storage or APIs.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UUID_V4, openPage, sitePage, sleep, useHarness, waitFor } from './browser.mjs';

const h = useHarness();

const MINUTE_MS = 60 * 1000;

describe('identity', () => {
  test('one visitor keeps one anonymous id across pages and sessions; UTM tags last a session', async () => {
    const { collector, context } = h;
    for (const path of ['/identity/a', '/identity/b', '/identity/c', '/identity/d']) {
      collector.page(path, sitePage(collector));
    }
    const t0 = Date.parse('2026-11-26T01:00:00.000Z');
    const steps = [
      { path: '/identity/a?utm_source=ads&utm_campaign=fall', at: t0 },
      { path: '/identity/b', at: t0 + 10 * MINUTE_MS },
      { path: '/identity/c', at: t0 + 41 * MINUTE_MS },
      { path: '/identity/d?utm_medium=social', at: t0 + 50 * MINUTE_MS },
    ];
    for (const [i, step] of steps.entries()) {
      await context.clock.setFixedTime(step.at);
      await openPage(context, collector.url(step.path));
      await waitFor(`page view ${i + 1}`, () => collector.unique().length == i + 1);
    }
    const views = collector.unique();

    assert.deepEqual(
      views.map((e) => [e.timestamp, e.utm_source, e.utm_medium, e.utm_campaign]),
      [
        ['2026-11-26T01:00:00.000Z', 'ads', undefined, 'fall'],
        ['2026-11-26T01:10:00.000Z', 'ads', undefined, 'fall'],
        ['2026-11-26T01:41:00.000Z', undefined, undefined, undefined],
        ['2026-11-26T01:50:00.000Z', undefined, 'social', undefined],
      ],
    );
    const [a, b, c, d] = views.map((e) => e.session_id);
    assert.equal(a, b, 'ten minutes apart is one session');
    assert.notEqual(b, c, 'over thirty idle minutes starts a new session');
    assert.equal(c, d);
    assert.equal(new Set(views.map((e) => e.anonymous_id)).size, 1, 'one visitor throughout');
    assert.match(views[0].anonymous_id, UUID_V4);
  });

  test("the existing pixel's pd_anonymous_id cookie is reused and left as it was", async () => {
    const { collector, context } = h;
    collector.page('/identity/legacy', sitePage(collector));
    await context.addCookies([{ name: 'pd_anonymous_id', value: 'pd-visitor-7', url: collector.url('/') }]);
    await openPage(context, collector.url('/identity/legacy'));
    const [view] = await waitFor('the page view', () => collector.unique().length && collector.unique());
    assert.equal(view.anonymous_id, 'pd-visitor-7');
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
      const { collector, context } = h;
      collector.page('/identity/hostile', sitePage(collector));
      await context.addInitScript(browser.init);
      const { page, errors } = await openPage(context, collector.url('/identity/hostile'));
      await page.click('#buy');
      await page.reload();
      await page.click('#buy');
      assert.equal(await page.textContent('#out'), '1');
      const pixel = await page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').length);
      assert.equal(pixel, 2, 'the existing pixel still sees the page view and the click');
      assert.deepEqual(errors, []);
      if (!browser.delivers) {
        await sleep(1500);
        assert.deepEqual(collector.requests, [], 'with no transport there is nothing to send with');
        return;
      }

      const events = await waitFor('four events', () => collector.unique().length >= 4 && collector.unique());
      assert.deepEqual(
        events.map((e) => e.event),
        ['page_view', 'product_clicked', 'page_view', 'product_clicked'],
      );
      for (const event of events) assert.match(event.event_id, UUID_V4);
      assert.equal(new Set(events.map((e) => e.anonymous_id)).size, 1, 'one visitor across the reload');
      if (browser.stored) assert.equal(await browser.stored(page), events[0].anonymous_id);
    });
  }
});
