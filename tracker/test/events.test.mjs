//! What an event looks like once the real collector has stored it: the contract v1 fields, the
//! client's ids, UTM tags, identify, the snippet queue, and the three ways to tell the tracker where
//! the collector is. Pages talk to `cdp serve` directly; assertions read its SQLite store.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UUID_V4, UUID_V7, openPage, sentEvents, sitePage, useHarness, uuid7Millis, waitForStored } from './browser.mjs';
import { asEvent, assertEnriched, assertStoredAsSent } from './store.mjs';

const h = useHarness();

/** The fields that vary per run, checked for shape and then removed so the rest compares as data. */
function stable(event) {
  const { event_id, anonymous_id, session_id, timestamp, ...rest } = event;
  assert.match(event_id, UUID_V7);
  assert.equal(uuid7Millis(event_id), Date.parse(timestamp), 'the event id starts with the time it was tracked');
  assert.match(anonymous_id, UUID_V4);
  assert.match(session_id, UUID_V4);
  assert.equal(new Date(timestamp).toISOString(), timestamp);
  return rest;
}

describe('events', () => {
  test('a page load and two clicks are stored as contract v1 events with their ids and UTM tags', async () => {
    const { site, server, context } = h;
    site.page('/events/shop', sitePage(server.endpoint, { title: 'Shop' }));
    const url = site.url('/events/shop?utm_source=news&utm_medium=email&utm_campaign=spring&x=1');
    const startedAt = Date.now();
    const { page, errors } = await openPage(context, url);
    await page.click('#buy');
    await page.click('#buy');
    const rows = await waitForStored(h, 3);
    const sent = await sentEvents(page);

    assertStoredAsSent(rows, sent);
    const events = rows.map(asEvent);
    const utm = { utm_source: 'news', utm_medium: 'email', utm_campaign: 'spring' };
    const common = { page_url: url, page_title: 'Shop', ...utm };
    assert.deepEqual(events.map(stable), [
      { ...common, event: 'page_view' },
      { ...common, event: 'product_clicked', properties: { product_id: 'p1' } },
      { ...common, event: 'product_clicked', properties: { product_id: 'p2' } },
    ]);
    assert.deepEqual(
      rows.map((row) => row.event_id),
      sent.map((event) => event.event_id),
      "the store keys each event by the client's event_id",
    );

    const cookie = (await context.cookies()).find((c) => c.name == 'pd_anonymous_id');
    assert.ok(cookie, 'the visitor cookie is set');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.sameSite, 'Lax');
    const yearS = 365 * 24 * 3600;
    assert.ok(Math.abs(cookie.expires - (startedAt / 1000 + yearS)) < 3600, 'the cookie lasts a year');

    assert.equal(new Set(events.map((e) => e.event_id)).size, 3, 'event ids are unique');
    assert.equal(sent.length, 3, 'a page that stays open sends nothing twice');
    assert.deepEqual([...new Set(events.map((e) => e.anonymous_id))], [cookie.value]);
    assert.equal(new Set(events.map((e) => e.session_id)).size, 1);
    for (const event of events) {
      const at = Date.parse(event.timestamp);
      assert.ok(at >= startedAt - 1000 && at <= Date.now(), 'timestamps are the time of the call');
    }
    assert.equal(await page.textContent('#out'), '2');
    assert.deepEqual(errors, []);
  });

  test('identify stores the email and every later event carries the customer id', async () => {
    const { site, server, context } = h;
    site.page('/events/account', sitePage(server.endpoint));
    const { page, errors } = await openPage(context, site.url('/events/account'));
    await page.evaluate(() => cdp.identify({ email: 'ada@example.com', customer_id: 'cust-42' }));
    await page.click('#buy');
    await waitForStored(h, 3);
    const sentBefore = await sentEvents(page);
    await page.reload();
    const rows = await waitForStored(h, 4);
    assertStoredAsSent(rows, [...sentBefore, ...(await sentEvents(page))]);

    const events = rows.map(asEvent);
    assert.deepEqual(
      events.map((e) => [e.event, e.customer_id, e.properties]),
      [
        ['page_view', undefined, undefined],
        ['identify', 'cust-42', { email: 'ada@example.com' }],
        ['product_clicked', 'cust-42', { product_id: 'p1' }],
        ['page_view', 'cust-42', undefined],
      ],
    );
    assert.equal(events[3].referrer, undefined, 'a reload has no referrer');
    assert.deepEqual(errors, []);
  });

  test('calls queued by the snippet before load are replayed before the automatic page view', async () => {
    const { site, server, context } = h;
    const snippet = [
      ['identify', { customer_id: 'early-1' }],
      ['track', 'hero_cta_clicked', { tunnel: 'lawn' }],
      ['no_such_method', 1],
    ];
    site.page('/events/snippet', sitePage(server.endpoint, { snippet }));
    const { page, errors } = await openPage(context, site.url('/events/snippet'));
    await page.evaluate(() => cdp.push(['track', 'search_performed', { query: 'seed' }]));
    const rows = await waitForStored(h, 4);
    const sent = await sentEvents(page);
    assertStoredAsSent(rows, sent);

    assert.deepEqual(
      sent.map((e) => [e.event, e.customer_id, e.properties]),
      [
        ['identify', 'early-1', undefined],
        ['hero_cta_clicked', 'early-1', { tunnel: 'lawn' }],
        ['page_view', 'early-1', undefined],
        ['search_performed', 'early-1', { query: 'seed' }],
      ],
    );
    assert.deepEqual(errors, []);
  });

  const endpointSources = [
    { name: 'window.cdpConfig.endpoint', page: (endpoint) => ({ config: { endpoint: endpoint + '/' }, dataEndpoint: false }) },
    { name: 'the data-endpoint attribute', page: () => ({ dataEndpoint: true }) },
    { name: 'the folder cdp.js was served from', page: () => ({ dataEndpoint: false }) },
  ];
  for (const source of endpointSources) {
    test(`the collector is found through ${source.name}`, async () => {
      const { site, server, context } = h;
      site.page('/events/config', sitePage(server.endpoint, source.page(server.endpoint)));
      await openPage(context, site.url('/events/config'));
      const [row] = await waitForStored(h, 1);
      assert.equal(row.event_type, 'page_view');
      assert.equal(row.page_url, site.url('/events/config'));
      assertEnriched(row);
    });
  }

  test('autoPage: false stores no page view until page() is called', async () => {
    const { site, server, context } = h;
    site.page('/events/manual', sitePage(server.endpoint, { config: { autoPage: false } }));
    const { page } = await openPage(context, site.url('/events/manual'));
    await page.evaluate(() => cdp.page({ section: 'lawn' }));
    const rows = await waitForStored(h, 1);
    assertStoredAsSent(rows, await sentEvents(page));
    assert.deepEqual(
      rows.map((row) => [row.event_type, row.properties]),
      [['page_view', { section: 'lawn' }]],
    );
  });
});
