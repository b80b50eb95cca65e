//! The fixtures stand in for the API in `formats.test.mjs` (figures real traffic does not produce
//! on demand), so they must be answers the API could give: derived figures agree with the figures they come from
//! (shares, cumulative funnel, conversions, deltas, click rates, the z-test, persona points and
//! confidence), stages follow the configured ladder, and personas carry their configured labels.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES } from './site.mjs';

const CONFIG = readFileSync(resolve(FIXTURES, '../../../fixtures/config/southland.toml'), 'utf8');
const LADDER = [...CONFIG.matchAll(/^stage = "(\w+)"/gm)].map((m) => m[1]);
const LABELS = Object.fromEntries([...CONFIG.matchAll(/^id = "(\w+)"\nlabel = "([^"]+)"/gm)].map((m) => [m[1], m[2]]));
const EVIDENCE_SCALE = Number(/^evidence_scale = ([\d.]+)/m.exec(CONFIG)[1]);

const read = (...path) => JSON.parse(readFileSync(join(FIXTURES, ...path), 'utf8'));
const close = (actual, expected, what, within = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= within, `${what}: ${actual}, expected ${expected}`);

function checkKpi(kpi, what) {
  if (kpi.previous === 0) assert.equal(kpi.delta_pct, null, `${what}: no delta against an empty window`);
  else close(kpi.delta_pct, ((kpi.value - kpi.previous) / kpi.previous) * 100, `${what} delta_pct`);
}

/** erfc by Abramowitz and Stegun 7.1.26 (error under 1.5e-7): enough to check a p-value. */
function erfc(x) {
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * Math.exp(-x * x);
}

const metricsFiles = readdirSync(join(FIXTURES, 'seeded'))
  .filter((f) => f.startsWith('metrics.'))
  .map((f) => ['seeded', f]);

describe('fixtures', () => {
  test('the configured ladder and personas are what the fixtures use', () => {
    assert.equal(LADDER.length, 10);
    assert.deepEqual(Object.keys(LABELS), ['backyard', 'commercial', 'lawn', 'general']);
  });

  for (const [scenario, file] of metricsFiles) {
    test(`${scenario}/${file} agrees with itself`, () => {
      const m = read(scenario, file);
      for (const [key, kpi] of Object.entries(m.kpis)) checkKpi(kpi, key);

      const visitors = m.personas.reduce((sum, p) => sum + p.visitors, 0);
      if (m.status === 'ok') assert.equal(visitors, m.kpis.unique_visitors.value, 'persona visitors add up to unique visitors');
      for (const p of m.personas) {
        assert.equal(p.label, LABELS[p.persona], `label of ${p.persona}`);
        close(p.share, p.visitors / visitors, `${p.persona} share`);
        assert.ok(p.explicit <= p.visitors, `${p.persona}: explicit choices are among its visitors`);
      }

      assert.deepEqual(m.funnel.map((s) => s.stage), LADDER, 'funnel in ladder order');
      assert.equal(m.funnel.reduce((sum, s) => sum + s.visitors, 0), m.kpis.unique_visitors.value);
      m.funnel.forEach((s, i) => {
        const beyond = m.funnel.slice(i).reduce((sum, t) => sum + t.visitors, 0);
        assert.equal(s.reached, beyond, `${s.stage}: reached = at this stage or beyond`);
        const before = m.funnel[i - 1];
        if (!before || before.reached === 0) assert.equal(s.conversion_from_previous, null, s.stage);
        else close(s.conversion_from_previous, s.reached / before.reached, `${s.stage} conversion`);
      });

      for (const t of m.tunnels) close(t.click_rate, t.cta_clicks / t.views, `${t.tunnel} click rate`);
      for (const ab of m.ab_tests) {
        const [a, b] = ab.variants;
        for (const v of ab.variants) close(v.rate, v.conversions / v.exposures, `${ab.test_id} ${v.variant} rate`);
        const pooled = (a.conversions + b.conversions) / (a.exposures + b.exposures);
        const z = (b.rate - a.rate) / Math.sqrt(pooled * (1 - pooled) * (1 / a.exposures + 1 / b.exposures));
        assert.equal(ab.significance.method, 'two-proportion z-test');
        close(ab.significance.z, z, `${ab.test_id} z`, 1e-4);
        close(ab.significance.p_value, erfc(Math.abs(z) / Math.SQRT2), `${ab.test_id} p`, 1e-5);
        assert.equal(ab.significance.significant, ab.significance.p_value < 0.05);
      }

      const labels = new Set(m.personas.map((p) => p.label));
      for (const row of m.chartData) {
        for (const key of Object.keys(row)) if (key !== 'date') assert.ok(labels.has(key), `chart series ${key} is a listed persona`);
        assert.match(row.date, m.window.bucket === 'hour' ? /^\d{4}-\d\d-\d\dT\d\d:00$/ : /^\d{4}-\d\d-\d\d$/);
      }
      assert.equal(m.revenue.status, 'unavailable');
    });
  }

  test('searches agree with themselves and with the search events', () => {
    for (const range of ['7d', '24h']) {
      const s = read('seeded', `searches.${range}.json`);
      const m = read('seeded', `metrics.${range}.json`);
      checkKpi(s.total, `${range} total`);
      for (const q of s.top) checkKpi({ value: q.count, previous: q.previous, delta_pct: q.delta_pct }, q.query);
      const searchEvents = m.top_events.find((e) => e.event_type === 'search_performed');
      assert.equal(s.total.value, searchEvents.count, `${range}: searches = search_performed events`);
    }
  });

  test('the visitor explanation adds up', () => {
    const dir = join(FIXTURES, 'seeded', 'profiles');
    for (const file of readdirSync(dir)) {
      const { profile, explanation, stage, persona_labels } = read('seeded', 'profiles', file);
      assert.deepEqual(persona_labels, LABELS);
      const points = Object.fromEntries(Object.keys(LABELS).map((id) => [id, 0]));
      for (const c of explanation.contributions) {
        close(c.points, c.weight * c.decay, `${c.event_id} points`);
        points[c.persona] += c.points;
      }
      const evidence = Object.values(points).reduce((a, b) => a + b, 0);
      close(explanation.scores.evidence, evidence, 'evidence');
      for (const [id, p] of Object.entries(points)) {
        close(explanation.points[id], p, `${id} points`);
        close(explanation.scores.probabilities[id], p / evidence, `${id} probability`);
        close(profile.persona_scores[id], p / evidence, `${id} score on the profile`);
      }
      const [p1, p2] = Object.values(explanation.scores.probabilities).sort((a, b) => b - a);
      close(explanation.scores.confidence, ((p1 - p2) * evidence) / (evidence + EVIDENCE_SCALE), 'confidence');
      assert.equal(profile.persona_confidence, explanation.scores.confidence);
      assert.equal(profile.current_stage, stage.stage);
      assert.equal(profile.stage_history.at(-1).stage, stage.stage);
      assert.ok(CONFIG.includes(`why = "${stage.rule}"`), 'the rule text is the configured one');
    }
  });

  test('the stream is newest first and links to known stages and personas', () => {
    const { events } = read('seeded', 'events.json');
    const times = events.map((e) => Date.parse(e.timestamp));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
    for (const e of events) {
      assert.ok(LADDER.includes(e.current_stage), e.current_stage);
      assert.equal(e.persona_label, LABELS[e.predicted_persona]);
    }
  });
});
