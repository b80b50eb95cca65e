//! Opt-out and consent: without consent, or after an opt-out, nothing is sent and nothing is stored
//! by the tracker (withdrawing consent removes what it kept, except the visitor cookie it shares with
//! the existing pixel), while that pixel is left to its own rules. Pages go through the proxy, which
//! forwards to `cdp serve`, so that "nothing is sent" is seen on the wire as well as in the store.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openPage, sitePage, sleep, storedByTracker, useHarness, waitForStored } from './browser.mjs';
import { assertStoredAsSent } from './store.mjs';

const h = useHarness();

const silenced = [
  {
    name: 'cdpConfig.consent is false',
    site: { config: { consent: false } },
    act: async () => {},
    stored: { keys: [], cookies: [] },
  },
  {
    name: 'the snippet queues consent(false)',
    site: { snippet: [['consent', false]] },
    act: async () => {},
    stored: { keys: [], cookies: [] },
  },
  {
    name: 'consent(false) comes after events were queued',
    site: {},
    // Within the flush delay, so the page view is still waiting in the queue.
    act: (page) => page.evaluate(() => cdp.consent(false)),
    stored: { keys: [], cookies: ['pd_anonymous_id'] },
  },
  {
    name: 'the visitor opted out',
    site: {},
    act: (page) => page.evaluate(() => cdp.optOut()),
    stored: { keys: ['cdp_opt_out'], cookies: ['pd_anonymous_id'] },
  },
];

describe('privacy', () => {
  for (const c of silenced) {
    test(`nothing is sent when ${c.name}`, async () => {
      const { site, proxy, context } = h;
      site.page('/privacy/page', sitePage(proxy.endpoint, c.site));
      const { page, errors } = await openPage(context, site.url('/privacy/page'));
      await c.act(page);
      await page.click('#buy');
      await page.evaluate(() => cdp.identify({ email: 'ada@example.com', customer_id: 'cust-1' }));
      await sleep(2500);

      assert.deepEqual(proxy.requests, [], 'no request reached the collector');
      assert.deepEqual(h.stored(), [], 'nothing was stored');
      assert.deepEqual(await storedByTracker(page), c.stored);
      const pixel = await page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').map((e) => e.event));
      assert.deepEqual(pixel, ['page_view', 'product_clicked', 'identify'], 'the existing pixel is unaffected');
      assert.equal(await page.textContent('#out'), '1');
      assert.deepEqual(errors, []);
    });
  }

  test('an opt-out lasts across page loads until optIn()', async () => {
    const { site, proxy, context } = h;
    site.page('/privacy/opt', sitePage(proxy.endpoint));
    const { page } = await openPage(context, site.url('/privacy/opt'));
    await waitForStored(h, 1);
    await page.evaluate(() => cdp.optOut());
    await page.reload();
    await page.click('#buy');
    await sleep(2000);
    assert.equal(proxy.requests.length, 1, 'only the page view from before the opt-out');
    assert.equal(h.stored().length, 1);

    await page.evaluate(() => cdp.optIn());
    await page.click('#buy');
    const rows = await waitForStored(h, 2);
    assert.deepEqual(
      rows.map((row) => [row.event_type, row.properties]),
      [
        ['page_view', {}],
        ['product_clicked', { product_id: 'p2' }],
      ],
    );
    assertStoredAsSent(rows, proxy.delivered());
    assert.equal(await page.evaluate(() => localStorage.getItem('cdp_opt_out')), null);
  });

  test('consent(true) resumes tracking on a page that started without consent', async () => {
    const { site, proxy, context } = h;
    site.page('/privacy/grant', sitePage(proxy.endpoint, { config: { consent: false } }));
    const { page } = await openPage(context, site.url('/privacy/grant'));
    await page.click('#buy');
    await page.evaluate(() => cdp.consent(true));
    await page.click('#buy');
    await waitForStored(h, 1);
    await sleep(1500);
    const rows = h.stored();
    assert.deepEqual(
      rows.map((row) => [row.event_type, row.properties]),
      [['product_clicked', { product_id: 'p2' }]],
    );
    assertStoredAsSent(rows, proxy.delivered());
  });
});
