//! The store going down under a real `cdp serve`: the server runs on a fresh Postgres database
//! reached through a TCP proxy this test starts, seeded through `/collect`. Cutting the proxy is
//! the store stopping: the API answers 503 `offline`, and after Refresh the page shows the "CDP
//! offline" banner with the server's reason and no figures, never the old ones. Restoring the
//! proxy brings the figures back. Postgres must be reachable: this is never skipped.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertNoFigures, consistentRead, expectText as x, openDashboard, screenshot, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness('postgres');

/** The KPI cards as the page shows them, and as the API's figures say they should read. */
const shownKpis = (page) => texts(page, '[data-testid^="kpi-"] [data-testid="value"]');
const expectedKpis = (metrics) => Object.values(metrics.kpis).map((k) => x.count(k.value));

/** Records the status and body of every API answer the page gets. */
function recordAnswers(page) {
  const answers = [];
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/api/cdp/')) return;
    answers.push({ path: url.pathname, status: response.status(), body: await response.json().catch(() => null) });
  });
  return answers;
}

describe('offline (real cdp serve on Postgres, store cut by a proxy)', () => {
  test('the store stops: "CDP offline" and no figures after Refresh; back: the figures return', async () => {
    const health = await h.site.api('/health');
    assert.equal(health.body.backend, h.site.backend);

    let page;
    let errors;
    const { bodies, seen } = await consistentRead(h, ['/api/cdp/metrics?range=7d'], async () => {
      ({ page, errors } = await openDashboard(h));
      await waitForState(page, 'ready');
      return shownKpis(page);
    });
    assert.equal(bodies[0].kpis.events.value, h.seededEvents);
    assert.deepEqual(seen, expectedKpis(bodies[0]), 'figures from Postgres while the store is up');

    h.pg.proxy.cut();
    const down = await h.site.api('/api/cdp/metrics?range=7d');
    assert.equal(down.status, 503, `metrics with the store cut: ${JSON.stringify(down.body)}`);
    assert.equal(down.body.status, 'offline');
    assert.ok(down.body.reason, 'the 503 says why');
    const downHealth = await h.site.api('/health');
    assert.equal(downHealth.status, 503);
    assert.equal(downHealth.body.store, 'unreachable');

    const answers = recordAnswers(page);
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'offline');
    assert.match(await text(page, '[data-testid="offline"]'), /^CDP offline/);
    const reasons = answers.filter((a) => a.status === 503).map((a) => a.body?.reason);
    assert.ok(reasons.length > 0, `the page got 503s: ${JSON.stringify(answers)}`);
    assert.ok(reasons.includes(await text(page, '[data-testid="offline-reason"]')), `the banner shows a reason the server sent: ${reasons}`);
    assert.equal(await page.locator('[data-testid="health"]').getAttribute('data-status'), downHealth.body.status);
    await assertNoFigures(page);
    assert.match(await text(page, '[data-testid="last-updated"]'), /^Last checked /);
    assert.deepEqual(errors, []);
    await screenshot(page, 'offline', { height: 400 });

    h.pg.proxy.restore();
    const back = await consistentRead(h, ['/api/cdp/metrics?range=7d'], async () => {
      await page.locator('[data-testid="refresh"]').click();
      await waitForState(page, 'ready');
      return shownKpis(page);
    });
    assert.equal(await page.locator('[data-testid="offline"]').count(), 0, 'the banner goes when the store is back');
    assert.deepEqual(back.seen, expectedKpis(back.bodies[0]), 'the figures come back, from the store');
    assert.equal(back.bodies[0].kpis.events.value, h.seededEvents);
  });

  test('a page opened while the store is down shows the banner from the start', async () => {
    h.pg.proxy.cut();
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'offline');
    assert.match(await text(page, '[data-testid="offline"]'), /^CDP offline/);
    await assertNoFigures(page);
    h.pg.proxy.restore();
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'ready');
    assert.deepEqual(errors, []);
  });

  test('the database refusing connections (SQLSTATE 55000): "CDP offline" with the reason, never an error', async () => {
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'ready');
    h.pg.refuseConnections();
    try {
      // The server reconnects for its next query and is refused: every API answer is an
      // offline 503 naming the SQLSTATE, not a 500.
      const deadline = Date.now() + 20000;
      let down;
      for (;;) {
        down = await h.site.api('/api/cdp/metrics?range=7d');
        assert.equal(down.status, 503, `metrics while the database refuses: ${JSON.stringify(down.body)}`);
        assert.equal(down.body.status, 'offline');
        if (/SQLSTATE 55000/.test(down.body.reason) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(down.body.reason, /SQLSTATE 55000/, 'the reason names what the database said');
      const answers = recordAnswers(page);
      await page.locator('[data-testid="refresh"]').click();
      await waitForState(page, 'offline');
      assert.match(await text(page, '[data-testid="offline"]'), /^CDP offline/);
      assert.match(await text(page, '[data-testid="offline-reason"]'), /SQLSTATE 55000/);
      assert.equal(answers.filter((a) => a.status >= 500 && a.status !== 503).length, 0, `no 500s: ${JSON.stringify(answers)}`);
      await assertNoFigures(page);
      assert.deepEqual(errors, []);
    } finally {
      h.pg.allowConnections();
    }
    await page.locator('[data-testid="refresh"]').click();
    await waitForState(page, 'ready');
  });
});
