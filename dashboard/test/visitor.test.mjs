//! The visitor view, opened from the live stream of a real seeded `cdp serve`: the profile, why it
//! has its persona (every contributing signal with its weight, decay and points), and the rule that
//! set its stage, all as `/api/cdp/profiles/{id}` answers them.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { consistentRead, expectText as x, openDashboard, screenshot, text, texts, useHarness, waitForState } from './browser.mjs';

const h = useHarness('seeded');

/** Everything the visitor view shows. */
async function readVisitor(page) {
  const detail = (id) => text(page, `[data-testid="visitor"] [data-testid="${id}"]`);
  return {
    id: await text(page, '[data-testid="visitor-id"]'),
    predicted: await detail('predicted'),
    confidence: await detail('persona-confidence'),
    explicit: await detail('explicit'),
    title: await text(page, '[data-testid="explanation"] [data-testid="title"]'),
    contributions: await page.locator('[data-testid="contribution"]').evaluateAll((trs) =>
      trs.map((tr) =>
        Object.fromEntries(
          ['event-type', 'persona', 'hint', 'weight', 'decay', 'points'].map((k) => [k, tr.querySelector(`[data-testid="${k}"]`).textContent]),
        ),
      ),
    ),
    stage: (await text(page, '[data-testid="visitor-stage"] [data-testid="stage"]')).toLowerCase(),
    stageConfidence: await text(page, '[data-testid="stage-confidence"]'),
    rule: await text(page, '[data-testid="stage-rule"]'),
    history: (await texts(page, '[data-testid="history-row"] span')).map((s) => s.toLowerCase()),
  };
}

describe('visitor (real cdp serve)', () => {
  test('opening a visitor from the stream shows the explanation /api/cdp/profiles/{id} gives', async () => {
    // The stream is fixed once seeding is done; pick the visitor of its first row.
    const { body: stream } = await h.site.api('/api/cdp/events?limit=50');
    const anonymousId = stream.events[0].anonymous_id;
    const path = `/api/cdp/profiles/${encodeURIComponent(anonymousId)}`;

    let page;
    let errors;
    const { bodies, seen } = await consistentRead(h, [path], async () => {
      ({ page, errors } = await openDashboard(h));
      await waitForState(page, 'ready');
      const link = page.locator('[data-testid="stream-row"] [data-testid="visitor-link"]').first();
      assert.equal(await link.getAttribute('title'), anonymousId, 'the first stream row is the API stream first event');
      await link.click();
      assert.equal(new URL(page.url()).hash, `#/visitor/${encodeURIComponent(anonymousId)}`);
      await page.locator('[data-testid="visitor"][data-state="ok"]').waitFor();
      return readVisitor(page);
    });
    const { profile, explanation, stage, persona_labels: labels } = bodies[0];
    const label = (id) => labels[id] ?? id;
    assert.ok(explanation.contributions.length > 0, 'a seeded visitor has signals to explain');

    assert.deepEqual(seen, {
      id: anonymousId,
      predicted: label(profile.predicted_persona),
      confidence: x.fraction(profile.persona_confidence),
      explicit: profile.explicit_persona ? label(profile.explicit_persona) : 'none',
      title: `Why ${label(explanation.scores.predicted)}`,
      contributions: explanation.contributions.map((c) => ({
        'event-type': c.event_type,
        persona: label(c.persona),
        hint: c.hint,
        weight: x.decimal(c.weight),
        decay: `×${x.decimal(c.decay)}`,
        points: x.decimal(c.points),
      })),
      stage: stage.stage.replace(/_/g, ' '),
      stageConfidence: x.fraction(stage.confidence),
      rule: stage.rule,
      history: profile.stage_history.map((s) => s.stage.replace(/_/g, ' ')),
    });

    await screenshot(page, 'visitor', { fullPage: false, height: 1400 });

    await page.keyboard.press('Escape');
    await page.locator('[data-testid="visitor"]').waitFor({ state: 'detached' });
    assert.equal(new URL(page.url()).hash, '#/');
    assert.deepEqual(errors, []);
  });

  test('a visitor with no profile says so (the API answers 404)', async () => {
    const { status } = await h.site.api('/api/cdp/profiles/no-such-visitor');
    assert.equal(status, 404);
    const { page } = await openDashboard(h, { hash: '#/visitor/no-such-visitor' });
    await page.locator('[data-testid="visitor-not-found"]').waitFor();
    assert.match(await text(page, '[data-testid="visitor-not-found"]'), /^No profile for this visitor/);
  });
});
