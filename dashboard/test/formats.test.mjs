//! Figures that real traffic does not produce on demand, from the fixture server (site.mjs): a fall
//! (a true minus sign), a flat 0.0 %, a previous window of 0 ("new"), a significant A/B test with
//! its z and p, and a window in which one persona has no visitors. Every other browser test runs
//! against a real `cdp serve`; this file checks the page's wording letter for letter.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDashboard, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness('fixtures');

describe('formats (fixture server)', () => {
  test('the KPI cards, personas, funnel and A/B significance read exactly as the fixture says', async () => {
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'ready');
    assert.deepEqual(await texts(page, '[data-testid^="kpi-"]'), [
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
    const funnel = await page.locator('[data-testid="funnel-row"]').evaluateAll((rows) =>
      rows.slice(0, 3).map((row) => ['reached', 'at-stage', 'conversion'].map((k) => row.querySelector(`[data-testid="${k}"]`).textContent)),
    );
    assert.deepEqual(funnel, [
      ['1,842', '620', '—'],
      ['1,222', '402', '66.3%'],
      ['820', '338', '67.1%'],
    ]);
    const ab = '[data-testid="ab-test"][data-test-id="hero-copy-2026q1"]';
    assert.equal(await text(page, `${ab} [data-testid="significance"]`), 'two-proportion z-test · z = 2.73 · p = 0.006');
    assert.equal(await text(page, `${ab} [data-testid="significant"]`), 'significant');
    assert.deepEqual(errors, []);
  });

  test('24h: a flat 0.0 % badge, and the chart draws only the personas present', async () => {
    const { page } = await openDashboard(h);
    await waitForState(page, 'ready');
    await page.locator('[data-testid="range"] button', { hasText: '24h' }).click();
    await page.locator('[data-testid="persona-chart"] >> text=Events per hour').waitFor();
    await waitForState(page, 'ready');
    assert.equal(await text(page, '[data-testid="kpi-sessions"] [data-testid="delta"]'), '0.0%');
    assert.deepEqual((await texts(page, '[data-testid="persona-chart"] .tremor-Legend-legendItem')).sort(), [
      'Backyard Betty',
      'Broiler Bill',
      'Lawn & Garden',
    ]);
  });
});
