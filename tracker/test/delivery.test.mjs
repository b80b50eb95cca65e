//! How events reach the collector: dual-fire order, batching, flushing on the way out, and what
//! happens when the collector is down, failing or rejecting. "Exactly once" is counted over requests
//! the collector answered 2xx.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deliveryCounts, openPage, sitePage, sleep, useHarness, waitFor } from './browser.mjs';

const h = useHarness();

const queuedInStorage = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('cdp_queue') || '[]'));

describe('delivery', () => {
  test('the existing pixel gets every event, unchanged, before our request is made', async () => {
    const { collector, context } = h;
    collector.page('/delivery/pixel', sitePage(collector));
    const { page, errors } = await openPage(context, collector.url('/delivery/pixel'));
    for (let i = 0; i < 3; i++) await page.click('#buy');
    await page.evaluate(() => cdp.identify({ email: 'ada@example.com' }));
    await waitFor('five events', () => collector.unique().length >= 5);
    const log = await page.evaluate(() => window.__log);

    const pixelCalls = log.filter((entry) => entry.kind == 'pixel');
    assert.deepEqual(
      pixelCalls.map((call) => [call.event, call.properties]),
      [
        ['page_view', null],
        ['product_clicked', { product_id: 'p1' }],
        ['product_clicked', { product_id: 'p2' }],
        ['product_clicked', { product_id: 'p3' }],
        ['identify', { email: 'ada@example.com' }],
      ],
    );
    assert.ok(
      pixelCalls.filter((call) => call.event == 'product_clicked').every((call) => call.same),
      'the pixel receives the very properties object the page passed',
    );
    // Walk the log in order: every event in a request must already have been given to the pixel.
    const seenByPixel = new Map();
    let sent = 0;
    for (const entry of log) {
      if (entry.kind == 'pixel') seenByPixel.set(entry.event, (seenByPixel.get(entry.event) || 0) + 1);
      else {
        for (const event of entry.events) {
          const left = seenByPixel.get(event.event) || 0;
          assert.ok(left > 0, `${event.event} was sent before the pixel saw it`);
          seenByPixel.set(event.event, left - 1);
          sent++;
        }
      }
    }
    assert.equal(sent, 5);
    assert.deepEqual(errors, []);
  });

  test('a pixel that throws neither breaks the page nor stops our events', async () => {
    const { collector, context } = h;
    collector.page('/delivery/broken-pixel', sitePage(collector, { pixel: 'throw' }));
    const { page, errors } = await openPage(context, collector.url('/delivery/broken-pixel'));
    await page.click('#buy');
    const events = await waitFor('two events', () => collector.unique().length >= 2 && collector.unique());
    assert.deepEqual(
      events.map((e) => e.event),
      ['page_view', 'product_clicked'],
    );
    assert.equal(await page.textContent('#out'), '1');
    assert.deepEqual(errors, []);
  });

  const outages = [
    { name: 'stopped', begin: (c) => c.stop(), end: (c) => c.start() },
    { name: 'answering 503', begin: (c) => (c.mode = 'fail'), end: (c) => (c.mode = 'ok') },
  ];
  for (const outage of outages) {
    test(`with the collector ${outage.name}, the page works and queued events arrive exactly once later`, async () => {
      const { collector, context } = h;
      collector.page('/delivery/outage', sitePage(collector));
      const { page, errors } = await openPage(context, collector.url('/delivery/outage'));
      await waitFor('the page view', () => collector.unique().length == 1);

      await outage.begin(collector);
      for (let i = 0; i < 3; i++) await page.click('#buy');
      assert.equal(await page.textContent('#out'), '3', 'the page keeps working');
      // Long enough for the first attempts to fail and the backoff to grow.
      await sleep(3000);
      const pixelClicks = await page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').length);
      assert.equal(pixelClicks, 4, 'the pixel got the page view and every click');
      assert.deepEqual(
        (await queuedInStorage(page)).map((e) => e.properties.product_id),
        ['p1', 'p2', 'p3'],
        'the clicks wait in the persisted queue',
      );
      if (outage.name == 'answering 503') {
        assert.ok(collector.requests.some((r) => r.status == 503), 'the tracker did try');
      }

      await outage.end(collector);
      await waitFor('the clicks', () => collector.unique().length == 4, 30000);
      await sleep(1500);
      const counts = deliveryCounts(collector);
      assert.deepEqual([...counts.values()], [1, 1, 1, 1], 'each event arrived exactly once');
      assert.deepEqual(await queuedInStorage(page), []);
      assert.deepEqual(errors, []);
    });
  }

  test('events queued while the collector fails are sent by the next page load', async () => {
    const { collector, context } = h;
    collector.page('/delivery/reload', sitePage(collector));
    const { page } = await openPage(context, collector.url('/delivery/reload'));
    await waitFor('the page view', () => collector.unique().length == 1);
    // Failing rather than stopped, so that the reloaded page can still fetch cdp.js.
    collector.mode = 'fail';
    await page.click('#buy');
    await sleep(1500);
    await page.reload();
    await sleep(1500);
    collector.mode = 'ok';
    const events = await waitFor('the click', () => collector.unique().length == 3 && collector.unique());
    assert.deepEqual(
      events.map((e) => e.event),
      ['page_view', 'product_clicked', 'page_view'],
    );
    await sleep(1500);
    assert.deepEqual([...deliveryCounts(collector).values()], [1, 1, 1]);
  });

  test('navigating away flushes pending events with a beacon', async () => {
    const { collector, context } = h;
    collector.page('/delivery/leave', sitePage(collector));
    const { page } = await openPage(context, collector.url('/delivery/leave'));
    await waitFor('the page view', () => collector.unique().length == 1);
    // Leave at once: the click is still waiting for its flush delay.
    await page.click('#buy');
    await page.click('#away');
    await page.waitForURL(/\/blank$/);
    const click = await waitFor('the click', () => collector.requests.find((r) => r.events.some((e) => e.event == 'product_clicked')));
    assert.equal(click.fetchMode, 'no-cors', 'sent by sendBeacon');
    assert.equal(click.status, 200);
  });

  test('a page turning hidden flushes with a beacon and does not resend when it comes back', async () => {
    const { collector, context } = h;
    collector.page('/delivery/hidden', sitePage(collector));
    const { page } = await openPage(context, collector.url('/delivery/hidden'));
    await waitFor('the page view', () => collector.unique().length == 1);
    await page.click('#buy');
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
      Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor('the click', () => collector.unique().length == 2);
    await sleep(2000);
    assert.deepEqual([...deliveryCounts(collector).values()], [1, 1]);
    assert.deepEqual(
      collector.requests.map((r) => r.fetchMode),
      ['cors', 'no-cors'],
    );
  });

  test('a 4xx answer drops the events instead of retrying them', async () => {
    const { collector, context } = h;
    collector.page('/delivery/reject', sitePage(collector));
    collector.mode = 'reject';
    const { page, errors } = await openPage(context, collector.url('/delivery/reject'));
    await page.click('#buy');
    await page.click('#buy');
    await waitFor('three rejected events', () => collector.requests.flatMap((r) => r.events).length >= 3);
    await sleep(4000);
    const tried = collector.requests.flatMap((r) => r.events.map((e) => e.event_id));
    assert.equal(tried.length, 3, 'each rejected event was tried once');
    assert.equal(new Set(tried).size, 3);
    assert.ok(collector.requests.every((r) => r.status == 400));
    assert.deepEqual(await queuedInStorage(page), []);

    collector.mode = 'ok';
    await page.click('#buy');
    const events = await waitFor('the next click', () => collector.unique().length && collector.unique());
    assert.deepEqual(
      events.map((e) => e.properties.product_id),
      ['p3'],
    );
    assert.deepEqual(errors, []);
  });

  test('batches hold at most 50 events and stay under the keepalive budget', async () => {
    const { collector, context } = h;
    collector.page('/delivery/bulk', sitePage(collector, { config: { autoPage: false } }));
    const { page } = await openPage(context, collector.url('/delivery/bulk'));
    await page.evaluate(() => {
      for (let i = 0; i < 120; i++) cdp.track('podcast_play', { episode_slug: `ep-${i}`, n: i });
      // Just under the contract's 8 KiB of properties: a few of these fill a batch by size.
      const notes = 'x'.repeat(7 * 1024);
      for (let i = 0; i < 10; i++) cdp.track('podcast_complete', { episode_slug: `long-${i}`, n: i, notes });
    });
    await waitFor('every event', () => collector.unique().length == 130, 20000);
    await sleep(1000);
    assert.ok(collector.requests.every((r) => r.events.length <= 50), 'at most 50 events per request');
    assert.ok(collector.requests.every((r) => r.bytes <= 32 * 1024), 'bodies within half the keepalive budget');
    const withLong = collector.requests.filter((r) => r.events.some((e) => e.event == 'podcast_complete'));
    assert.ok(withLong.length >= 3, 'the long events were split by size');
    assert.deepEqual(new Set(deliveryCounts(collector).values()), new Set([1]));
    assert.deepEqual(
      collector.unique().map((e) => e.properties.n),
      [...Array(120).keys(), ...Array(10).keys()],
      'events arrive in the order they were tracked',
    );
  });

  test('the persisted queue keeps the newest 200 events', async () => {
    const { collector, context } = h;
    collector.page('/delivery/cap', sitePage(collector, { config: { autoPage: false } }));
    const { page } = await openPage(context, collector.url('/delivery/cap'));
    await collector.stop();
    await page.evaluate(() => {
      for (let i = 0; i < 250; i++) cdp.track('podcast_play', { episode_slug: `ep-${i}`, n: i });
    });
    const queued = await queuedInStorage(page);
    assert.equal(queued.length, 200);
    assert.equal(queued[0].properties.n, 50, 'the oldest were dropped');
    await collector.start();
    await waitFor('the queue to drain', async () => (await queuedInStorage(page)).length == 0, 30000);
    assert.deepEqual(
      collector.unique().map((e) => e.properties.n),
      Array.from({ length: 200 }, (_, i) => i + 50),
    );
  });
});
