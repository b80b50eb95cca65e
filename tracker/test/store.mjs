//! What the real collector stored: rows of `cdp_events` read straight from the SQLite file that
//! `cdp serve` writes under its `--data-dir` (schema: cdp-adapters/migrations/sqlite/0001_init.sql),
//! opened read-only, plus the checks that a stored row is the event the browser sent.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

/** Every stored event row in processing order, with `properties` and `persona_scores` parsed. */
export function storedRows(dbPath) {
  if (!existsSync(dbPath)) throw new Error(`no SQLite store at ${dbPath}: did cdp serve start?`);
  // A fresh read-only connection per read: it sees every transaction the server has committed.
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('select * from cdp_events order by seq')
      .all()
      .map((row) => ({
        ...row,
        properties: row.properties == null ? null : JSON.parse(row.properties),
        persona_scores: row.persona_scores == null ? null : JSON.parse(row.persona_scores),
      }));
  } finally {
    db.close();
  }
}

/** How many rows the store holds for each event id. */
export function rowsPerEventId(rows) {
  const counts = new Map();
  for (const row of rows) counts.set(row.event_id, (counts.get(row.event_id) || 0) + 1);
  return counts;
}

/**
 * A stored row in the shape of the contract v1 event the tracker sends (without `v`, which is not
 * stored): empty columns are left out, as the tracker leaves out empty fields, and the stored
 * timestamp (microseconds) is written back in the tracker's millisecond form.
 */
export function asEvent(row) {
  const event = {
    event: row.event_type,
    event_id: row.event_id,
    anonymous_id: row.anonymous_id,
    session_id: row.session_id,
    page_url: row.page_url,
    page_title: row.page_title,
    referrer: row.referrer,
    utm_source: row.utm_source,
    utm_medium: row.utm_medium,
    utm_campaign: row.utm_campaign,
    customer_id: row.customer_id,
    timestamp: new Date(Date.parse(row.timestamp)).toISOString(),
    properties: row.properties,
  };
  if (event.properties && Object.keys(event.properties).length == 0) delete event.properties;
  for (const key of Object.keys(event)) if (event[key] == null) delete event[key];
  return event;
}

/** The columns the collector derives from the event: brand, persona and journey stage. */
export function assertEnriched(row) {
  const what = `stored ${row.event_type} ${row.event_id}`;
  assert.equal(row.brand_id, 'southland', `${what}: brand`);
  assert.equal(typeof row.predicted_persona, 'string', `${what}: predicted_persona is filled`);
  assert.ok(row.predicted_persona.length > 0, `${what}: predicted_persona is filled`);
  assert.equal(typeof row.persona_confidence, 'number', `${what}: persona_confidence is filled`);
  assert.equal(typeof row.current_stage, 'string', `${what}: current_stage is filled`);
  assert.ok(row.current_stage.length > 0, `${what}: current_stage is filled`);
  assert.equal(typeof row.stage_confidence, 'number', `${what}: stage_confidence is filled`);
  assert.ok(row.persona_scores && typeof row.persona_scores == 'object', `${what}: persona_scores is filled`);
  assert.ok(row.persona_scores[row.predicted_persona] != null, `${what}: the predicted persona is scored`);
  assert.ok(!Number.isNaN(Date.parse(row.processed_at)), `${what}: processed_at is set`);
}

/**
 * Every event the browser sent is stored exactly once, under the client's `event_id`, with every
 * field as sent and the enrichment columns filled; and nothing else is stored. `sent` may repeat an
 * event (a retry or a beacon resent by the next page): the store must still hold it once.
 */
export function assertStoredAsSent(rows, sent) {
  const once = new Map();
  for (const event of sent) once.set(event.event_id, event);
  const counts = rowsPerEventId(rows);
  for (const [id, count] of counts) assert.equal(count, 1, `event ${id} is stored ${count} times`);
  assert.deepEqual([...counts.keys()].sort(), [...once.keys()].sort(), 'the store holds exactly the events sent');
  for (const row of rows) {
    const { v, ...wire } = once.get(row.event_id);
    assert.equal(v, 1, 'the tracker sends contract v1');
    if (wire.properties && Object.keys(wire.properties).length == 0) delete wire.properties;
    assert.deepEqual(asEvent(row), wire, `stored ${row.event_type} ${row.event_id} is the event as sent`);
    assertEnriched(row);
  }
}
