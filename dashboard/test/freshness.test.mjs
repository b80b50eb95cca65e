//! How fresh the figures are, against a real seeded `cdp serve`: the "Last updated" label ages by
//! the second, Refresh loads again from the server and resets it, and the page reloads on its own
//! every two minutes. The page's clock is Playwright's fake clock (started at the real time), so
//! minutes pass instantly.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDashboard, text, useHarness, waitForState } from './browser.mjs';

const h = useHarness('seeded');

const metricsCalls = (requests) => requests.filter((r) => r.startsWith('/api/cdp/metrics?')).length;

async function updatedAt(page) {
  return Date.parse(await page.locator('[data-testid="last-updated"]').getAttribute('datetime'));
}

describe('freshness', () => {
  test('the label ages, and Refresh loads again and resets it', async () => {
    const { page, requests } = await openDashboard(h);
    await waitForState(page, 'ready');
    assert.equal(await text(page, '[data-testid="last-updated"]'), 'Last updated just now');
    const refreshes = [];
    const first = await updatedAt(page);
    const calls = metricsCalls(requests);

    await page.clock.fastForward('00:42');
    await page.locator('[data-testid="last-updated"]', { hasText: 'Last updated 42 s ago' }).waitFor();

    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/api/cdp/metrics') refreshes.push(r.status());
    });
    await page.locator('[data-testid="refresh"]').click();
    await page.locator('[data-testid="last-updated"]', { hasText: 'Last updated just now' }).waitFor();
    assert.ok((await updatedAt(page)) - first >= 42_000, 'the timestamp moved on by the time that passed');
    assert.equal(metricsCalls(requests), calls + 1, 'Refresh asked the API again');
    assert.deepEqual(refreshes, [200], 'the real server answered the Refresh');
    await waitForState(page, 'ready');
  });

  test('the page reloads every two minutes', async () => {
    const { page, requests } = await openDashboard(h);
    await waitForState(page, 'ready');
    const calls = metricsCalls(requests);

    await page.clock.fastForward('01:50');
    assert.equal(metricsCalls(requests), calls, 'nothing before two minutes');
    await page.locator('[data-testid="last-updated"]', { hasText: 'Last updated 1 min ago' }).waitFor();

    await page.clock.fastForward('00:11');
    await page.locator('[data-testid="last-updated"]', { hasText: 'Last updated just now' }).waitFor();
    assert.equal(metricsCalls(requests), calls + 1, 'one poll after two minutes');
  });
});
