//! How events reach the real collector and its store: dual-fire order, outages (the `cdp serve`
//! process really stopped, or a 503 staged by the proxy), flushing on the way out, batching, and the
//! answers that must not be retried. "Exactly once" is counted in the store: one row per event_id,
//! and every event the existing pixel saw has its row.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  deliveryCounts,
  openPage,
  pixelCalls,
  sentEvents,
  sitePage,
  sleep,
  useHarness,
  waitFor,
  waitForStored,
} from './browser.mjs';
import { assertEnriched, assertStoredAsSent, rowsPerEventId } from './store.mjs';

const h = useHarness();

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

const queuedInStorage = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('cdp_queue') || '[]'));

/** Every call the pixel received has exactly one stored row with the same event and properties. */
function assertPixelCallsStored(calls, rows) {
  const key = ([event, properties]) => JSON.stringify([event, properties || {}]);
  assert.deepEqual(
    rows.map((row) => key([row.event_type, row.properties])).sort(),
    calls.map(key).sort(),
    'every event the pixel saw is stored, once',
  );
}

describe('delivery', () => {
  test('the existing pixel gets every event, unchanged, before our request is made; all are stored', async () => {
    const { site, server, context } = h;
    site.page('/delivery/pixel', sitePage(server.endpoint));
    const { page, errors } = await openPage(context, site.url('/delivery/pixel'));
    for (let i = 0; i < 3; i++) await page.click('#buy');
    await page.evaluate(() => cdp.identify({ email: 'ada@example.com' }));
    const rows = await waitForStored(h, 5);
    const log = await page.evaluate(() => window.__log);

    const calls = log.filter((entry) => entry.kind == 'pixel');
    assert.deepEqual(
      calls.map((call) => [call.event, call.properties]),
      [
        ['page_view', null],
        ['product_clicked', { product_id: 'p1' }],
        ['product_clicked', { product_id: 'p2' }],
        ['product_clicked', { product_id: 'p3' }],
        ['identify', { email: 'ada@example.com' }],
      ],
    );
    assert.ok(
      calls.filter((call) => call.event == 'product_clicked').every((call) => call.same),
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
    assertStoredAsSent(rows, await sentEvents(page));
    assertPixelCallsStored(await pixelCalls(page), rows);
    assert.deepEqual(errors, []);
  });

  test('a pixel that throws neither breaks the page nor stops our events', async () => {
    const { site, server, context } = h;
    site.page('/delivery/broken-pixel', sitePage(server.endpoint, { pixel: 'throw' }));
    const { page, errors } = await openPage(context, site.url('/delivery/broken-pixel'));
    await page.click('#buy');
    const rows = await waitForStored(h, 2);
    assertStoredAsSent(rows, await sentEvents(page));
    assert.deepEqual(
      rows.map((row) => row.event_type),
      ['page_view', 'product_clicked'],
    );
    assert.equal(await page.textContent('#out'), '1');
    assert.deepEqual(errors, []);
  });

  const outages = [
    {
      name: 'process stopped',
      // The page talks to cdp serve itself, and the process is really stopped: connections are refused.
      endpoint: (h) => h.server.endpoint,
      begin: (h) => h.server.stop(),
      end: (h) => h.server.start(),
    },
    {
      name: 'answering 503',
      // The real server only answers 503 when its store fails, so the proxy stages that answer.
      endpoint: (h) => h.proxy.endpoint,
      begin: (h) => (h.proxy.mode = 'fail'),
      end: (h) => (h.proxy.mode = 'pass'),
    },
  ];
  for (const outage of outages) {
    test(`with the collector ${outage.name}, the page works and queued events are stored exactly once later`, async () => {
      const { site, context } = h;
      site.page('/delivery/outage', sitePage(outage.endpoint(h)));
      const { page, errors } = await openPage(context, site.url('/delivery/outage'));
      await waitForStored(h, 1);

      await outage.begin(h);
      for (let i = 0; i < 3; i++) await page.click('#buy');
      assert.equal(await page.textContent('#out'), '3', 'the page keeps working');
      // Long enough for the first attempts to fail and the backoff to grow.
      await sleep(3000);
      assert.equal(await page.textContent('#out'), '3');
      assert.deepEqual(
        await pixelCalls(page),
        [
          ['page_view', null],
          ['product_clicked', { product_id: 'p1' }],
          ['product_clicked', { product_id: 'p2' }],
          ['product_clicked', { product_id: 'p3' }],
        ],
        'the pixel got the page view and every click',
      );
      const queued = await queuedInStorage(page);
      assert.deepEqual(
        queued.map((e) => e.properties.product_id),
        ['p1', 'p2', 'p3'],
        'the clicks wait in the persisted queue',
      );
      const tried = (await sentEvents(page)).filter((e) => e.event == 'product_clicked');
      assert.ok(tried.length >= 3, 'the tracker did try to send them');
      if (outage.name == 'answering 503') {
        assert.ok(h.proxy.requests.some((r) => r.status == 503), 'the tracker was answered 503');
      }
      assert.equal(h.stored().length, 1, 'nothing new reached the store during the outage');

      await outage.end(h);
      const rows = await waitForStored(h, 4, 30000);
      // Any retry still in flight lands now; it must not add a row.
      await sleep(1500);
      const final = h.stored();
      assert.deepEqual([...rowsPerEventId(final).values()], [1, 1, 1, 1], 'each event is stored exactly once');
      assert.equal(final.length, rows.length);
      assertStoredAsSent(final, await sentEvents(page));
      assert.deepEqual(
        final.slice(1).map((row) => row.event_id).sort(),
        queued.map((e) => e.event_id).sort(),
        'the queued clicks are the ones stored',
      );
      assertPixelCallsStored(await pixelCalls(page), final);
      assert.deepEqual(await queuedInStorage(page), []);
      assert.deepEqual(errors, []);
    });
  }

  test('events queued while the collector fails are stored once the next page load sends them', async () => {
    const { site, proxy, context } = h;
    site.page('/delivery/reload', sitePage(proxy.endpoint));
    const { page } = await openPage(context, site.url('/delivery/reload'));
    await waitForStored(h, 1);
    // Failing (staged by the proxy) rather than stopped, so that the reloaded page can still fetch cdp.js.
    proxy.mode = 'fail';
    await page.click('#buy');
    await sleep(1500);
    await page.reload();
    await sleep(1500);
    assert.equal(h.stored().length, 1);
    proxy.mode = 'pass';
    const rows = await waitForStored(h, 3);
    await sleep(1500);
    const final = h.stored();
    assert.deepEqual(
      final.map((row) => row.event_type),
      ['page_view', 'product_clicked', 'page_view'],
    );
    assertStoredAsSent(final, proxy.requests.flatMap((r) => r.events));
    assert.equal(final.length, rows.length);
    assert.deepEqual([...deliveryCounts(proxy).values()], [1, 1, 1], 'each event was answered 2xx once');
  });

  const exits = [
    { name: 'sent to cdp serve directly', endpoint: (h) => h.server.endpoint },
    // Through the proxy as well, to see that the flush is a beacon (`sec-fetch-mode: no-cors`).
    { name: 'seen by the proxy', endpoint: (h) => h.proxy.endpoint },
  ];
  for (const exit of exits) {
    test(`navigating away flushes pending events with a beacon, and they are stored (${exit.name})`, async () => {
      const { site, proxy, context } = h;
      site.page('/delivery/leave', sitePage(exit.endpoint(h)));
      const { page } = await openPage(context, site.url('/delivery/leave'));
      await waitForStored(h, 1);
      const before = await sentEvents(page);
      // Leave at once: the click is still waiting for its flush delay.
      await page.click('#buy');
      const queued = await queuedInStorage(page);
      assert.deepEqual(
        queued.map((e) => e.event),
        ['product_clicked'],
        'the click is still pending when the page is left',
      );
      const [pending] = queued;
      await page.click('#away');
      await page.waitForURL(/\/blank$/);
      const rows = await waitForStored(h, 2);
      assertStoredAsSent(rows, [...before, pending]);
      assert.equal(rows[1].event_id, pending.event_id, 'the pending click is stored under its event_id');
      if (exit.endpoint(h) == proxy.endpoint) {
        const carries = (r) => r.events.some((e) => e.event_id == pending.event_id);
        // The row is stored before the server's answer is back through the proxy: wait for the answer.
        await waitFor('the beacon answered', () => proxy.requests.some((r) => carries(r) && r.status));
        const carried = proxy.requests.filter(carries);
        assert.deepEqual(
          carried.map((r) => [r.fetchMode, r.status]),
          [['no-cors', 200]],
          'sent once, by sendBeacon',
        );
      }
    });
  }

  test('a page turning hidden flushes with a beacon and does not resend when it comes back', async () => {
    const { site, proxy, context } = h;
    site.page('/delivery/hidden', sitePage(proxy.endpoint));
    const { page } = await openPage(context, site.url('/delivery/hidden'));
    await waitForStored(h, 1);
    await page.click('#buy');
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
      Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitForStored(h, 2);
    await sleep(2000);
    assertStoredAsSent(h.stored(), await sentEvents(page));
    assert.deepEqual([...deliveryCounts(proxy).values()], [1, 1]);
    assert.deepEqual(
      proxy.requests.map((r) => r.fetchMode),
      ['cors', 'no-cors'],
    );
  });

  test('a 4xx answer drops the events instead of retrying them', async () => {
    const { site, proxy, context } = h;
    // The real collector answers 400 only when every event of a batch breaks the contract (next test);
    // to refuse valid clicks the proxy stages the 400.
    site.page('/delivery/reject', sitePage(proxy.endpoint));
    proxy.mode = 'reject';
    const { page, errors } = await openPage(context, site.url('/delivery/reject'));
    await page.click('#buy');
    await page.click('#buy');
    await waitFor('three rejected events', () => proxy.requests.flatMap((r) => r.events).length >= 3);
    await sleep(4000);
    const tried = proxy.requests.flatMap((r) => r.events.map((e) => e.event_id));
    assert.equal(tried.length, 3, 'each rejected event was tried once');
    assert.equal(new Set(tried).size, 3);
    assert.ok(proxy.requests.every((r) => r.status == 400));
    assert.deepEqual(await queuedInStorage(page), []);
    assert.deepEqual(h.stored(), [], 'the refused events never reached the store');

    proxy.mode = 'pass';
    await page.click('#buy');
    const rows = await waitForStored(h, 1);
    assert.deepEqual(
      rows.map((row) => row.properties.product_id),
      ['p3'],
    );
    assertStoredAsSent(rows, proxy.delivered());
    assert.deepEqual(errors, []);
  });

  test("events the real collector refuses (old, future, off-contract) are dropped, not retried; the rest are stored", async () => {
    const { site, proxy, context } = h;
    // Through the proxy only to read the collector's answers; every request reaches cdp serve.
    site.page('/delivery/verdicts', sitePage(proxy.endpoint));
    const verdicts = (r) => r.reply.events.map((e) => [e.status, e.problems.map((p) => `${p.field}: ${p.rule}`)]);

    // The collector keeps events up to 168 hours old, by its own clock: a browser clock 8 days behind
    // makes the page view and a click too old, and the whole batch is refused with a 400.
    await context.clock.setFixedTime(Date.now() - 8 * DAY_MS);
    const { page, errors } = await openPage(context, site.url('/delivery/verdicts'));
    await page.click('#buy');
    const old = await waitFor('the old batch answered', () => proxy.requests.find((r) => r.status));
    assert.equal(old.status, 400);
    assert.deepEqual(verdicts(old), [
      ['rejected', ['timestamp: older than 168 hours before receipt']],
      ['rejected', ['timestamp: older than 168 hours before receipt']],
    ]);

    // More than 300 seconds ahead of the collector's clock is refused as well.
    await context.clock.setFixedTime(Date.now() + HOUR_MS);
    await page.click('#buy');
    await waitFor('the future batch answered', () => proxy.requests.length == 2 && proxy.requests[1].status);
    const future = proxy.requests[1];
    assert.equal(future.status, 400);
    assert.deepEqual(verdicts(future), [['rejected', ['timestamp: more than 300 seconds in the future']]]);

    // With the clock right, one batch of a valid click, an event type the contract does not know and a
    // click without its product id: 200, the click stored, the other two refused one by one.
    await context.clock.setFixedTime(Date.now());
    await page.evaluate(() => {
      cdp.track('product_clicked', { product_id: 'good' });
      cdp.track('no_such_event', { product_id: 'x' });
      cdp.track('product_clicked', { collection: 'lawn' });
    });
    await waitFor('the mixed batch answered', () => proxy.requests.length == 3 && proxy.requests[2].status);
    const mixed = proxy.requests[2];
    assert.equal(mixed.status, 200);
    assert.deepEqual(
      verdicts(mixed).map(([status, problems]) => [status, problems.map((p) => p.split(':')[0])]),
      [
        ['accepted', []],
        ['rejected', ['event']],
        ['rejected', ['properties.product_id']],
      ],
    );

    await sleep(3000);
    assert.equal(proxy.requests.length, 3, 'nothing refused was sent again');
    assert.deepEqual(await queuedInStorage(page), []);
    const rows = h.stored();
    assert.deepEqual(
      rows.map((row) => [row.event_type, row.properties]),
      [['product_clicked', { product_id: 'good' }]],
    );
    assert.equal(rows[0].event_id, mixed.events[0].event_id);
    assertEnriched(rows[0]);
    assert.equal(await page.textContent('#out'), '2');
    assert.deepEqual(errors, []);
  });

  test('batches hold at most 50 events and stay under the keepalive budget', async () => {
    const { site, proxy, context } = h;
    site.page('/delivery/bulk', sitePage(proxy.endpoint, { config: { autoPage: false } }));
    const { page } = await openPage(context, site.url('/delivery/bulk'));
    await page.evaluate(() => {
      for (let i = 0; i < 120; i++) cdp.track('podcast_play', { episode_slug: `ep-${i}`, n: i });
      // Just under the contract's 8 KiB of properties: a few of these fill a batch by size.
      const notes = 'x'.repeat(7 * 1024);
      for (let i = 0; i < 10; i++) cdp.track('podcast_complete', { episode_slug: `long-${i}`, n: i, notes });
    });
    await waitForStored(h, 130, 30000);
    await sleep(1000);
    assert.ok(proxy.requests.every((r) => r.events.length <= 50), 'at most 50 events per request');
    assert.ok(proxy.requests.every((r) => r.bytes <= 32 * 1024), 'bodies within half the keepalive budget');
    const withLong = proxy.requests.filter((r) => r.events.some((e) => e.event == 'podcast_complete'));
    assert.ok(withLong.length >= 3, 'the long events were split by size');
    assert.deepEqual(new Set(deliveryCounts(proxy).values()), new Set([1]));
    assert.deepEqual(
      proxy.delivered().map((e) => e.properties.n),
      [...Array(120).keys(), ...Array(10).keys()],
      'events arrive in the order they were tracked',
    );
    assertStoredAsSent(h.stored(), proxy.delivered());
  });

  test('the persisted queue keeps the newest 200 events while the collector is stopped', async () => {
    const { site, server, context } = h;
    site.page('/delivery/cap', sitePage(server.endpoint, { config: { autoPage: false } }));
    const { page } = await openPage(context, site.url('/delivery/cap'));
    await server.stop();
    await page.evaluate(() => {
      for (let i = 0; i < 250; i++) cdp.track('podcast_play', { episode_slug: `ep-${i}`, n: i });
    });
    const queued = await queuedInStorage(page);
    assert.equal(queued.length, 200);
    assert.equal(queued[0].properties.n, 50, 'the oldest were dropped');
    await server.start();
    await waitFor('the queue to drain', async () => (await queuedInStorage(page)).length == 0, 60000);
    const rows = h.stored();
    assert.deepEqual(
      rows.map((row) => row.properties.n).sort((a, b) => a - b),
      Array.from({ length: 200 }, (_, i) => i + 50),
    );
    assertStoredAsSent(rows, queued);
  });
});
