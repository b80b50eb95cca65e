//! Opt-out and consent: without consent, or after an opt-out, nothing is sent and nothing is stored
//! by the tracker (withdrawing consent removes what it kept, except the visitor cookie it shares with
//! the existing pixel), while that pixel is left to its own rules.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openPage, sitePage, sleep, storedByTracker, useHarness, waitFor } from './browser.mjs';

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
      const { collector, context } = h;
      collector.page('/privacy/page', sitePage(collector, c.site));
      const { page, errors } = await openPage(context, collector.url('/privacy/page'));
      await c.act(page);
      await page.click('#buy');
      await page.evaluate(() => cdp.identify({ email: 'ada@example.com', customer_id: 'cust-1' }));
      await sleep(2500);

      assert.deepEqual(collector.requests, [], 'no request reached the collector');
      assert.deepEqual(await storedByTracker(page), c.stored);
      const pixel = await page.evaluate(() => window.__log.filter((e) => e.kind == 'pixel').map((e) => e.event));
      assert.deepEqual(pixel, ['page_view', 'product_clicked', 'identify'], 'the existing pixel is unaffected');
      assert.equal(await page.textContent('#out'), '1');
      assert.deepEqual(errors, []);
    });
  }

  test('an opt-out lasts across page loads until optIn()', async () => {
    const { collector, context } = h;
    collector.page('/privacy/opt', sitePage(collector));
    const { page } = await openPage(context, collector.url('/privacy/opt'));
    await waitFor('the page view', () => collector.unique().length == 1);
    await page.evaluate(() => cdp.optOut());
    await page.reload();
    await page.click('#buy');
    await sleep(2000);
    assert.equal(collector.requests.length, 1, 'only the page view from before the opt-out');

    await page.evaluate(() => cdp.optIn());
    await page.click('#buy');
    const events = await waitFor('the click after opting in', () => collector.unique().length == 2 && collector.unique());
    assert.deepEqual(events[1].properties, { product_id: 'p2' });
    assert.equal(await page.evaluate(() => localStorage.getItem('cdp_opt_out')), null);
  });

  test('consent(true) resumes tracking on a page that started without consent', async () => {
    const { collector, context } = h;
    collector.page('/privacy/grant', sitePage(collector, { config: { consent: false } }));
    const { page } = await openPage(context, collector.url('/privacy/grant'));
    await page.click('#buy');
    await page.evaluate(() => cdp.consent(true));
    await page.click('#buy');
    const events = await waitFor('the click after consent', () => collector.unique().length && collector.unique());
    await sleep(1500);
    assert.deepEqual(
      collector.unique().map((e) => [e.event, e.properties]),
      [['product_clicked', { product_id: 'p2' }]],
    );
    assert.equal(events.length, 1);
  });
});
