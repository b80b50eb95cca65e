//! A real `cdp serve` seeded through `/collect` (`cdp demo --visitors 150 --days 7`): every figure on
//! the page is the one the API answers, written the way the page writes it. The test reads
//! `/api/cdp/metrics`, `/events` and `/searches` itself with the admin token, around reading the
//! page, and compares (see `consistentRead`).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { consistentRead, expectText as x, openDashboard, screenshot, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness('seeded');

/** Everything the page shows of the figures, read off the page in one go. */
async function readPage(page) {
  const kpis = {};
  for (const card of await page.locator('[data-testid^="kpi-"]').all()) {
    const key = (await card.getAttribute('data-testid')).slice('kpi-'.length);
    kpis[key] = {
      value: await text(card, '[data-testid="value"]'),
      delta: await text(card, '[data-testid="delta"]'),
      previous: await text(card, '[data-testid="previous"]'),
    };
  }
  const abTests = {};
  for (const block of await page.locator('[data-testid="ab-test"]').all()) {
    abTests[await block.getAttribute('data-test-id')] = {
      significance: await block.locator('[data-testid="significance"]').innerText(),
      significant: await block.locator('[data-testid="significant"]').innerText(),
      variants: (await block.locator('[data-testid="variant-row"]').allInnerTexts()).map((r) => r.split(/\s+/).join(' ')),
    };
  }
  return {
    kpis,
    personas: await texts(page, '[data-testid="persona-row"]'),
    chartSeries: new Set(await texts(page, '[data-testid="persona-chart"] .tremor-Legend-legendItem')),
    funnel: await funnelRows(page),
    tunnels: await texts(page, '[data-testid="tunnel-row"]'),
    abTests,
    revenue: {
      status: await text(page, '[data-testid="revenue"] [data-testid="status"]'),
      reason: await text(page, '[data-testid="revenue"] [data-testid="reason"]'),
      disabled: await page.locator('[data-testid="revenue"]').getAttribute('aria-disabled'),
    },
    searchTotal: {
      value: await text(page, '[data-testid="search-total"] [data-testid="value"]'),
      delta: await text(page, '[data-testid="search-total"] [data-testid="delta"]'),
    },
    searches: await searchRows(page),
    gaps: await texts(page, '[data-testid="gap-row"]'),
    stream: await streamRows(page),
  };
}

/** Checks that `seen` (from readPage) shows exactly the figures of the API answers. */
function assertShows(seen, metrics, searches, stream, rangeLabel) {
  assert.deepEqual(
    seen.kpis,
    Object.fromEntries(
      Object.entries(metrics.kpis).map(([key, kpi]) => [
        key,
        { value: x.count(kpi.value), delta: x.delta(kpi), previous: `previous ${rangeLabel}: ${x.count(kpi.previous)}` },
      ]),
    ),
    'KPI cards: value, delta badge and previous window, for every KPI the API sends',
  );
  assert.deepEqual(
    seen.personas,
    metrics.personas.map((p) => `${p.label}${x.count(p.visitors)} · ${x.fraction(p.share)} · ${x.count(p.explicit)}`),
    'persona legend: label, visitors, share, explicit choices',
  );
  const labelsInData = new Set(metrics.chartData.flatMap((row) => Object.keys(row).filter((k) => k !== 'date')));
  assert.deepEqual(seen.chartSeries, labelsInData, 'one chart series per persona label in chartData');
  assert.deepEqual(
    seen.funnel,
    metrics.funnel.map((s) => [s.stage, x.count(s.reached), x.count(s.visitors), x.fraction(s.conversion_from_previous)]),
    'funnel in ladder order: reached, at stage, step conversion',
  );
  assert.equal(metrics.funnel.length, 10);
  assert.deepEqual(
    seen.tunnels,
    metrics.tunnels.map((r) => `${r.tunnel}${x.count(r.views)}${x.count(r.cta_clicks)}${x.fraction(r.click_rate)}`),
  );
  assert.deepEqual(Object.keys(seen.abTests).sort(), metrics.ab_tests.map((t) => t.test_id).sort());
  for (const abTest of metrics.ab_tests) {
    const shown = seen.abTests[abTest.test_id];
    const s = abTest.significance;
    assert.match(shown.significance, new RegExp(`^${s.method}`));
    assert.equal(shown.significant, s.significant ? 'significant' : 'not significant');
    assert.deepEqual(
      shown.variants,
      abTest.variants.map((v) => `${v.variant} ${x.count(v.exposures)} ${x.count(v.conversions)} ${x.fraction(v.rate)}`),
    );
  }
  assert.deepEqual(seen.revenue, { status: metrics.revenue.status, reason: metrics.revenue.reason, disabled: 'true' });
  assert.deepEqual(seen.searchTotal, { value: x.count(searches.total.value), delta: x.delta(searches.total) });
  assert.deepEqual(
    seen.searches,
    searches.top.map((q) => [
      q.query,
      x.count(q.count),
      x.count(q.previous),
      x.delta({ value: q.count, delta_pct: q.delta_pct }),
      x.count(q.zero_result_count),
    ]),
    'top searches: query, count, previous, change, zero-result count',
  );
  assert.deepEqual(seen.gaps, searches.zero_results.map((q) => `${q.query}${x.count(q.count)}`));
  assert.deepEqual(
    seen.stream,
    stream.events.map((e) => [e.event_type, `#/visitor/${encodeURIComponent(e.anonymous_id)}`, e.persona_label]),
    'the stream lists the API events in its order (newest first)',
  );
}

describe('seeded (real cdp serve)', () => {
  test('the KPI cards, personas, funnel, tables, searches and stream show the API figures (7d)', async () => {
    let page;
    let errors;
    const { bodies, seen } = await consistentRead(h, ['/api/cdp/metrics?range=7d', '/api/cdp/searches?range=7d', '/api/cdp/events?limit=50'], async () => {
      ({ page, errors } = await openDashboard(h));
      await waitForState(page, 'ready');
      return readPage(page);
    });
    const [metrics, searches, stream] = bodies;
    assert.equal(metrics.status, 'ok');
    assert.equal(metrics.kpis.events.value, h.seededEvents, 'every event cdp demo sent is in the 7-day window');
    assert.ok(metrics.kpis.unique_visitors.value > 0 && stream.events.length > 0 && searches.top.length > 0, 'the seed produced figures to compare');
    assertShows(seen, metrics, searches, stream, '7 days');
    assert.deepEqual(errors, []);
    await screenshot(page, 'main');
  });

  test('choosing 24h asks the API for it and shows its figures, with real deltas, hourly', async () => {
    let requests;
    const { bodies, seen } = await consistentRead(h, ['/api/cdp/metrics?range=24h', '/api/cdp/searches?range=24h', '/api/cdp/events?limit=50'], async () => {
      let page;
      ({ page, requests } = await openDashboard(h));
      await waitForState(page, 'ready');
      await page.locator('[data-testid="range"] button', { hasText: '24h' }).click();
      await page.locator('[data-testid="persona-chart"] >> text=Events per hour').waitFor();
      await waitForState(page, 'ready');
      return readPage(page);
    });
    assert.ok(requests.includes('/api/cdp/metrics?range=24h'), requests.join(', '));
    assert.ok(requests.includes('/api/cdp/searches?range=24h'), requests.join(', '));
    const [metrics, searches, stream] = bodies;
    // Seven days of traffic: the 24 hours before this window have events too, so the badges are
    // real percentages, not "new".
    assert.ok(
      Object.values(metrics.kpis).some((k) => k.delta_pct !== null),
      `some 24h KPI has a delta against the previous 24 hours: ${JSON.stringify(metrics.kpis)}`,
    );
    assertShows(seen, metrics, searches, stream, '24 hours');
  });

  test('skeletons and no figures while the API has not answered', async () => {
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

/** Each search row's cells: query, searches, previous, change badge, zero-result count. */
async function searchRows(page) {
  return page.locator('[data-testid="search-row"]').evaluateAll((rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent.trim())),
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
