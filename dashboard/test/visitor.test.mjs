//! The visitor view, opened from the live stream: the profile, why it has its persona (every
//! contributing signal with its weight, decay and points), and the rule that set its stage.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectText as x, openDashboard, screenshot, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness();

describe('visitor', () => {
  test('opening a visitor from the stream shows the persona explanation and the stage rule', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'ready');
    const link = page.locator('[data-testid="stream-row"] [data-testid="visitor-link"]').first();
    const anonymousId = await link.getAttribute('title');
    await link.click();
    assert.equal(new URL(page.url()).hash, `#/visitor/${encodeURIComponent(anonymousId)}`);
    await page.locator('[data-testid="visitor"][data-state="ok"]').waitFor();
    assert.equal(await text(page, '[data-testid="visitor-id"]'), anonymousId);

    const { status, body } = await h.site.api(`/api/cdp/profiles/${encodeURIComponent(anonymousId)}`);
    assert.equal(status, 200);
    const { profile, explanation, stage, persona_labels: labels } = body;
    const label = (id) => labels[id] ?? id;

    assert.equal(await text(page, '[data-testid="visitor"] [data-testid="predicted"]'), label(profile.predicted_persona));
    assert.equal(await text(page, '[data-testid="visitor"] [data-testid="persona-confidence"]'), x.fraction(profile.persona_confidence));
    assert.equal(await text(page, '[data-testid="visitor"] [data-testid="explicit"]'), profile.explicit_persona ? label(profile.explicit_persona) : 'none');
    assert.equal(await text(page, '[data-testid="explanation"] [data-testid="title"]'), `Why ${label(explanation.scores.predicted)}`);

    const rows = await page.locator('[data-testid="contribution"]').evaluateAll((trs) =>
      trs.map((tr) =>
        Object.fromEntries(
          ['event-type', 'persona', 'hint', 'weight', 'decay', 'points'].map((k) => [k, tr.querySelector(`[data-testid="${k}"]`).textContent]),
        ),
      ),
    );
    assert.deepEqual(
      rows,
      explanation.contributions.map((c) => ({
        'event-type': c.event_type,
        persona: label(c.persona),
        hint: c.hint,
        weight: x.decimal(c.weight),
        decay: `×${x.decimal(c.decay)}`,
        points: x.decimal(c.points),
      })),
    );

    assert.equal(await text(page, '[data-testid="visitor-stage"] [data-testid="stage"]').then((s) => s.toLowerCase()), stage.stage.replace(/_/g, ' '));
    assert.equal(await text(page, '[data-testid="stage-confidence"]'), x.fraction(stage.confidence));
    assert.equal(await text(page, '[data-testid="stage-rule"]'), stage.rule);
    assert.deepEqual(
      (await texts(page, '[data-testid="history-row"] span')).map((s) => s.toLowerCase()),
      profile.stage_history.map((s) => s.stage.replace(/_/g, ' ')),
    );

    if (h.site.fixtures) {
      assert.deepEqual(rows.at(-1), { 'event-type': 'hero_cta_clicked', persona: 'Backyard Betty', hint: 'tunnel', weight: '3.00', decay: '×1.50', points: '4.50' });
      assert.equal(await text(page, '[data-testid="clause"]'), 'clause 2');
    }

    await screenshot(page, 'visitor', { fullPage: false, height: 1400 });

    await page.keyboard.press('Escape');
    await page.locator('[data-testid="visitor"]').waitFor({ state: 'detached' });
    assert.equal(new URL(page.url()).hash, '#/');
    assert.deepEqual(errors, []);
  });

  test('a visitor with no profile says so', async (t) => {
    if (!h.site.use(t, 'seeded')) return;
    const { page } = await openDashboard(h, { hash: '#/visitor/no-such-visitor' });
    await page.locator('[data-testid="visitor-not-found"]').waitFor();
    assert.match(await text(page, '[data-testid="visitor-not-found"]'), /^No profile for this visitor/);
  });
});
