//! A real `cdp serve` that has never received an event: the empty state ("No events recorded yet"
//! with the setup checklist and live health), and what happens to that page when the session ends
//! (a link to the login page) or the server stops answering (offline, no figures). The store going
//! down under a page with figures is offline.test.mjs, on Postgres.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertNoFigures, openDashboard, screenshot, text, useHarness, waitForState } from './browser.mjs';

const h = useHarness('empty');

describe('empty (real cdp serve, no events)', () => {
  test('an empty store shows "No events recorded yet" with the setup checklist and live health', async () => {
    const { status, body: metrics } = await h.site.api('/api/cdp/metrics?range=7d');
    assert.equal(status, 200);
    assert.equal(metrics.status, 'empty', 'the API says empty (200), not offline');
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'empty');
    const origin = h.site.origin;
    assert.equal(await text(page, '[data-testid="empty"] [data-testid="title"]'), 'No events recorded yet');
    assert.equal(await text(page, '[data-testid="snippet"]'), `<script src="${origin}/cdp.js" data-endpoint="${origin}" async></script>`);
    assert.equal(await text(page, '[data-testid="collector-url"]'), `${origin}/collect`);
    assert.equal(await page.locator('[data-testid="health-link"]').getAttribute('href'), '/health');
    const { body: health } = await h.site.api('/health');
    assert.equal(health.status, 'ok');
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), health.status);
    assert.match(await text(page, '[data-testid="health"]'), new RegExp(`store ${health.store}`));
    await assertNoFigures(page);
    assert.match(await text(page, '[data-testid="last-updated"]'), /^Last updated /);
    assert.deepEqual(errors, []);
    await screenshot(page, 'empty', { height: 720 });
  });
});

describe('signed out', () => {
  test('without the token the server redirects the page to /admin/login and the API answers 401', async () => {
    const page = await (await h.browser.newContext()).newPage();
    const response = await fetch(`${h.site.origin}/api/cdp/metrics?range=7d`);
    assert.equal(response.status, 401);
    await page.goto(`${h.site.origin}/admin/cdp/`);
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    await page.context().close();
  });

  test('a session that ends under an open page shows a Sign in link and no figures', async () => {
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'empty');
    // The token stops reaching the server, as when the login cookie expires: the API answers 401.
    await page.context().setExtraHTTPHeaders({});
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'unauthorized');
    const link = page.locator('[data-testid="sign-in"] a');
    assert.equal(await link.textContent(), 'Sign in');
    assert.equal(await link.getAttribute('href'), '/admin/login');
    await assertNoFigures(page);
    assert.deepEqual(errors, []);
  });
});

describe('no answer', () => {
  test('a server that does not answer at all is offline, with no figures', async () => {
    const { page } = await openDashboard(h);
    await waitForState(page, 'empty');
    await page.route('**/api/cdp/**', (route) => route.abort('connectionrefused'));
    await page.route('**/health', (route) => route.abort('connectionrefused'));
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'offline');
    assert.match(await text(page, '[data-testid="offline-reason"]'), /^the server did not answer/);
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), 'unreachable');
    await assertNoFigures(page);
  });
});
