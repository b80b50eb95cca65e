//! The states other than "ready": an empty store (setup checklist), a store that is down (offline
//! banner and no figures, also when it goes down after figures were shown), and a signed-out
//! browser (a link to the login page).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDashboard, screenshot, text, useHarness, waitForState } from './browser.mjs';

const h = useHarness();

/** What the page must not show when it has no figures to show. */
async function assertNoFigures(page) {
  for (const selector of ['[data-testid="figures"]', '[data-testid^="kpi-"]', '[data-testid="stream-row"]', '[data-testid="funnel-row"]', '[data-testid="loading"]']) {
    assert.equal(await page.locator(selector).count(), 0, `no ${selector}`);
  }
}

describe('empty', () => {
  test('an empty store shows "No events recorded yet" with the setup checklist and live health', async (t) => {
    if (!h.site.use(t, 'empty')) return;
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'empty');
    const origin = h.site.origin;
    assert.equal(await text(page, '[data-testid="empty"] [data-testid="title"]'), 'No events recorded yet');
    assert.equal(await text(page, '[data-testid="snippet"]'), `<script src="${origin}/cdp.js" data-endpoint="${origin}" async></script>`);
    assert.equal(await text(page, '[data-testid="collector-url"]'), `${origin}/collect`);
    assert.equal(await page.locator('[data-testid="health-link"]').getAttribute('href'), '/health');
    const { body: health } = await h.site.api('/health');
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), health.status);
    assert.match(await text(page, '[data-testid="health"]'), new RegExp(`store ${health.store}`));
    await assertNoFigures(page);
    assert.match(await text(page, '[data-testid="last-updated"]'), /^Last updated /);
    assert.deepEqual(errors, []);
    await screenshot(page, 'empty', { height: 720 });
  });
});

describe('offline', () => {
  test('a 503 from the API shows the "CDP offline" banner with its reason and no figures', async (t) => {
    if (!h.site.use(t, 'offline')) return;
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'offline');
    const { status, body } = await h.site.api('/api/cdp/metrics?range=7d');
    assert.equal(status, 503);
    assert.equal(body.status, 'offline');
    assert.match(await text(page, '[data-testid="offline"]'), /^CDP offline/);
    assert.equal(await text(page, '[data-testid="offline-reason"]'), body.reason);
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), 'degraded');
    await assertNoFigures(page);
    assert.match(await text(page, '[data-testid="last-updated"]'), /^Last checked /);
    assert.deepEqual(errors, []);
    await screenshot(page, 'offline', { height: 400 });
  });

  test('a store that goes down after a good load takes its figures off the page', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page } = await openDashboard(h);
    await waitForState(page, 'ready');
    const reason = 'store unreachable: the test stopped it';
    await page.route('**/api/cdp/**', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ status: 'offline', reason }) }),
    );
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'offline');
    assert.equal(await text(page, '[data-testid="offline-reason"]'), reason);
    await assertNoFigures(page);

    await page.unroute('**/api/cdp/**');
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'ready');
    assert.equal(await page.locator('[data-testid="offline"]').count(), 0, 'the banner goes when the store is back');
  });

  test('a server that does not answer at all is offline too, with no stale figures', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page } = await openDashboard(h);
    await waitForState(page, 'ready');
    await page.route('**/api/cdp/**', (route) => route.abort('connectionrefused'));
    await page.route('**/health', (route) => route.abort('connectionrefused'));
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'offline');
    assert.match(await text(page, '[data-testid="offline-reason"]'), /^the server did not answer/);
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), 'unreachable');
    await assertNoFigures(page);
  });
});

describe('signed out', () => {
  test('a 401 shows a Sign in link to the login page and no figures', async (t) => {
    if (!h.site.use(t, 'unauthorized')) return;
    const { page, errors } = await openDashboard(h, { auth: false });
    await waitForState(page, 'unauthorized');
    const link = page.locator('[data-testid="sign-in"] a');
    assert.equal(await link.textContent(), 'Sign in');
    assert.equal(await link.getAttribute('href'), '/admin/login');
    await assertNoFigures(page);
    assert.deepEqual(errors, []);
  });
});
