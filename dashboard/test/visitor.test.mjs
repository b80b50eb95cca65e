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

  test('the drawer is the person view: both browsers of one person, each identifier and the link that attached it', async () => {
    // The events go through /collect; on the Worker they reach Postgres through its queue.
    // One person on two browsers: an identify on the laptop, an email signup on the phone.
    const tag = `${Date.now()}${Math.floor(performance.now())}`;
    const [laptop, phone] = [`laptop-${tag}`, `phone-${tag}`];
    const email = `rita-${tag}@example.org`;
    const at = (s) => new Date(Date.now() - 60_000 + s * 1000).toISOString();
    const send = (anon, event, properties, s) => ({
      v: 1, event, anonymous_id: anon, session_id: `${anon}-s`, timestamp: at(s),
      page_url: 'https://southlandorganics.com/backyard', properties,
    });
    const events = [
      send(laptop, 'page_view', {}, 0),
      send(laptop, 'identify', { email }, 1),
      send(phone, 'email_signup', { email: email.toUpperCase(), source: 'footer' }, 2),
      send(phone, 'page_view', {}, 3),
    ];
    const posted = await fetch(`${h.site.origin}/collect`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events),
    });
    assert.equal(posted.status, 200);
    for (let tries = 0; ; tries++) {
      const { body } = await h.site.api(`/api/cdp/people/${encodeURIComponent(phone)}`);
      if (body?.browsers?.length === 2) break;
      assert.ok(tries < 100, `the person never joined both browsers: ${JSON.stringify(body)}`);
      await new Promise((done) => setTimeout(done, 200));
    }

    const { page, errors } = await openDashboard(h, { hash: `#/visitor/${encodeURIComponent(laptop)}` });
    const card = page.locator('[data-testid="person"]');
    await card.and(page.locator(':not([data-state="loading"])')).waitFor();
    const { status, body: person } = await h.site.api(`/api/cdp/people/${encodeURIComponent(laptop)}`);
    assert.equal(status, 200, JSON.stringify(person));
    assert.equal(await card.getAttribute('data-state'), 'ok');
    assert.equal(await text(page, '[data-testid="person-id"]'), person.person_id);
    assert.deepEqual(person.browsers.slice().sort(), [laptop, phone].sort());
    assert.deepEqual(
      await texts(page, '[data-testid="person-browser"]'),
      person.browsers.map((b) => (b === laptop ? `${b} (this one)` : b)),
    );
    const rows = await page.locator('[data-testid="person-identifier"]').evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute('data-kind'), tr.querySelector('[data-testid="attached-by"]').textContent]),
    );
    const other = (m) => (m.attached_by.a.kind === m.kind && m.attached_by.a.value === m.value ? m.attached_by.b : m.attached_by.a);
    assert.deepEqual(
      rows,
      person.identifiers.map((m) => [m.kind, `an event linking it to ${x.words(other(m).kind)} ${other(m).value}`]),
    );
    assert.equal(await text(page, '[data-testid="person-events"]'), x.count(4));
    await screenshot(page, 'person', { fullPage: false, height: 1000 });

    // The other browser opens the same person.
    await page.locator(`[data-testid="person-browser"][href="#/visitor/${encodeURIComponent(phone)}"]`).click();
    await page.locator('[data-testid="visitor-id"]', { hasText: phone }).waitFor();
    await page.locator('[data-testid="person"][data-state="ok"]').waitFor();
    assert.equal(await text(page, '[data-testid="person-id"]'), person.person_id);
    assert.deepEqual(errors, []);
  });

  test('the identity panel shows /api/cdp/identity: people across browsers, refused links by reason', async () => {
    const { page, errors } = await openDashboard(h);
    await waitForState(page, 'ready');
    const panel = page.locator('[data-testid="identity"]');
    await panel.and(page.locator(':not([data-state="loading"])')).waitFor();
    const { status, body } = await h.site.api('/api/cdp/identity');
    assert.equal(status, 200);
    assert.equal(await panel.getAttribute('data-state'), 'ok');
    assert.equal(await text(page, '[data-testid="cross-device"]'), x.count(body.cross_device_people));
    assert.equal(await text(page, '[data-testid="linked-people"]'), x.count(body.linked_people));
    const refusals = await page.locator('[data-testid="refusal"]').evaluateAll((lis) =>
      lis.map((li) => [li.getAttribute('data-reason'), li.querySelector('span:last-child').textContent]),
    );
    assert.deepEqual(refusals, Object.entries(body.rejections).map(([r, n]) => [r, x.count(n)]));
    assert.ok(refusals.length >= 7, 'every reason is named, zero included');
    assert.deepEqual(errors, []);
  });
});
