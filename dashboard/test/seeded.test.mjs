//! A store with data: every figure on the page is the one the API sent, written the way the page
//! writes it. Each test reads the API itself and compares, so the same test holds against the
//! fixtures and against a real seeded `cdp serve`; against the fixtures, the KPI cards are also
//! checked letter for letter.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectText as x, openDashboard, screenshot, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness();

describe('seeded', () => {
  test('the KPI cards, personas, funnel, tables and stream show the API figures', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'ready');
    const { body: metrics } = await h.site.api('/api/cdp/metrics?range=7d');
    const { body: stream } = await h.site.api('/api/cdp/events?limit=50');
    const { body: searches } = await h.site.api('/api/cdp/searches?range=7d');

    for (const [key, kpi] of Object.entries(metrics.kpis)) {
      const card = `[data-testid="kpi-${key}"]`;
      assert.equal(await text(page, `${card} [data-testid="value"]`), x.count(kpi.value), `${key} value`);
      assert.equal(await text(page, `${card} [data-testid="delta"]`), x.delta(kpi), `${key} delta`);
      assert.equal(await text(page, `${card} [data-testid="previous"]`), `previous 7 days: ${x.count(kpi.previous)}`);
    }

    assert.deepEqual(
      await texts(page, '[data-testid="persona-row"]'),
      metrics.personas.map((p) => `${p.label}${x.count(p.visitors)} · ${x.fraction(p.share)} · ${x.count(p.explicit)}`),
      'persona legend: label, visitors, share, explicit choices',
    );
    const labelsInData = new Set(metrics.chartData.flatMap((row) => Object.keys(row).filter((k) => k !== 'date')));
    assert.deepEqual(
      new Set(await texts(page, '[data-testid="persona-chart"] .tremor-Legend-legendItem')),
      labelsInData,
      'one chart series per persona label in chartData',
    );

    assert.deepEqual(
      await funnelRows(page),
      metrics.funnel.map((s) => [s.stage, x.count(s.reached), x.count(s.visitors), x.fraction(s.conversion_from_previous)]),
      'funnel in ladder order: reached, at stage, step conversion',
    );
    assert.equal(metrics.funnel.length, 10);

    assert.deepEqual(
      await texts(page, '[data-testid="tunnel-row"]'),
      metrics.tunnels.map((r) => `${r.tunnel}${x.count(r.views)}${x.count(r.cta_clicks)}${x.fraction(r.click_rate)}`),
    );
    for (const abTest of metrics.ab_tests) {
      const block = page.locator(`[data-testid="ab-test"][data-test-id="${abTest.test_id}"]`);
      const s = abTest.significance;
      assert.match(await block.locator('[data-testid="significance"]').innerText(), new RegExp(`^${s.method} · z = `));
      assert.equal(await block.locator('[data-testid="significant"]').innerText(), s.significant ? 'significant' : 'not significant');
      assert.deepEqual(
        (await block.locator('[data-testid="variant-row"]').allInnerTexts()).map((r) => r.split(/\s+/).join(' ')),
        abTest.variants.map((v) => `${v.variant} ${x.count(v.exposures)} ${x.count(v.conversions)} ${x.fraction(v.rate)}`),
      );
    }

    assert.equal(await text(page, '[data-testid="revenue"] [data-testid="status"]'), metrics.revenue.status);
    assert.equal(await text(page, '[data-testid="revenue"] [data-testid="reason"]'), metrics.revenue.reason);
    assert.equal(await page.locator('[data-testid="revenue"]').getAttribute('aria-disabled'), 'true');

    assert.equal(await text(page, '[data-testid="search-total"] [data-testid="value"]'), x.count(searches.total.value));
    assert.equal(await text(page, '[data-testid="search-total"] [data-testid="delta"]'), x.delta(searches.total));
    assert.deepEqual(
      await searchRows(page),
      searches.top.map((q) => [q.query, x.count(q.count), x.delta({ value: q.count, delta_pct: q.delta_pct })]),
    );
    assert.deepEqual(
      await texts(page, '[data-testid="gap-row"]'),
      searches.zero_results.map((q) => `${q.query}${x.count(q.count)}`),
    );

    assert.deepEqual(
      await streamRows(page),
      stream.events.map((e) => [e.event_type, `#/visitor/${encodeURIComponent(e.anonymous_id)}`, e.persona_label]),
      'the stream lists the API events in its order (newest first)',
    );
    assert.deepEqual(errors, []);
    await screenshot(page, 'main');
  });

  test('the KPI cards read exactly as the fixture says', async (t) => {
    if (!h.site.fixtures) return t.skip('checks the fixture figures; a real server has its own');
    const { page } = await openDashboard(h);
    await waitForState(page, 'ready');
    const cards = await texts(page, '[data-testid^="kpi-"]');
    assert.deepEqual(cards, [
      'Events+19.4%16,240previous 7 days: 13,600',
      'Unique visitors\u22126.0%1,842previous 7 days: 1,960',
      'Sessions+13.7%2,615previous 7 days: 2,300',
      'Identified profilesnew57previous 7 days: 0',
    ]);
    assert.deepEqual(await texts(page, '[data-testid="persona-row"] [data-testid="label"]'), [
      'Backyard Betty',
      'Broiler Bill',
      'Lawn & Garden',
      'General',
    ]);
    assert.deepEqual((await funnelRows(page)).slice(0, 3), [
      ['unaware', '1,842', '620', '—'],
      ['aware', '1,222', '402', '66.3%'],
      ['interested', '820', '338', '67.1%'],
    ]);
    assert.equal(
      await text(page, '[data-testid="ab-test"][data-test-id="hero-copy-2026q1"] [data-testid="significance"]'),
      'two-proportion z-test · z = 2.73 · p = 0.006',
    );
    assert.equal(await page.locator('[data-testid="stream-row"]').count(), 8);
  });

  test('choosing a range asks the API for it and shows its figures, hourly for 24h', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page, requests } = await openDashboard(h);
    await waitForState(page, 'ready');
    await page.locator('[data-testid="range"] button', { hasText: '24h' }).click();
    await page.locator('[data-testid="persona-chart"] >> text=Visitors per hour').waitFor();
    await waitForState(page, 'ready');
    assert.ok(requests.includes('/api/cdp/metrics?range=24h'), requests.join(', '));
    assert.ok(requests.includes('/api/cdp/searches?range=24h'), requests.join(', '));

    const { body: metrics } = await h.site.api('/api/cdp/metrics?range=24h');
    for (const [key, kpi] of Object.entries(metrics.kpis)) {
      assert.equal(await text(page, `[data-testid="kpi-${key}"] [data-testid="value"]`), x.count(kpi.value), key);
      assert.equal(await text(page, `[data-testid="kpi-${key}"] [data-testid="delta"]`), x.delta(kpi), key);
    }
    const labelsInData = new Set(metrics.chartData.flatMap((row) => Object.keys(row).filter((k) => k !== 'date')));
    assert.deepEqual(new Set(await texts(page, '[data-testid="persona-chart"] .tremor-Legend-legendItem')), labelsInData);
    if (h.site.fixtures) {
      // No General visitors in this window: the chart draws only the personas present.
      assert.deepEqual([...labelsInData].sort(), ['Backyard Betty', 'Broiler Bill', 'Lawn & Garden']);
      assert.equal(await text(page, '[data-testid="kpi-sessions"] [data-testid="delta"]'), '0.0%');
    }
  });

  test('skeletons and no figures while the API has not answered', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const { page } = await openDashboard(h, {
      beforeLoad: (p) =>
        p.route('**/api/cdp/metrics*', async (route) => {
          await gate;
          await route.continue();
        }),
    });
    await page.locator('[data-testid="loading"]').waitFor();
    assert.equal(await page.locator('[data-testid^="kpi-"]').count(), 0);
    assert.equal(await text(page, '[data-testid="last-updated"]'), 'Loading…');
    release();
    await waitForState(page, 'ready');
    assert.equal(await page.locator('[data-testid="loading"]').count(), 0);
  });
});

async function funnelRows(page) {
  return page.locator('[data-testid="funnel-row"]').evaluateAll((rows) =>
    rows.map((row) => [
      row.getAttribute('data-stage'),
      row.querySelector('[data-testid="reached"]').textContent,
      row.querySelector('[data-testid="at-stage"]').textContent,
      row.querySelector('[data-testid="conversion"]').textContent,
    ]),
  );
}

async function searchRows(page) {
  return page.locator('[data-testid="search-row"]').evaluateAll((rows) =>
    rows.map((row) => [
      row.querySelector('[data-testid="query"]').textContent,
      row.querySelector('[data-testid="count"]').textContent,
      row.querySelector('[data-testid="delta"]').textContent.trim(),
    ]),
  );
}

async function streamRows(page) {
  return page.locator('[data-testid="stream-row"]').evaluateAll((rows) =>
    rows.map((row) => [
      row.querySelector('[data-testid="event-type"]').textContent,
      row.querySelector('[data-testid="visitor-link"]').getAttribute('href'),
      row.querySelector('[data-testid="persona"]').textContent.trim(),
    ]),
  );
}
