// The CDP collector at the edge: Cloudflare bindings around the Rust core compiled to wasm
// (`cdp-wasm`). Every decision (contract, scoring, stages, the profile reducer, HTTP answers,
// sampling, Supabase requests and their retry/split verdicts) is made in Rust; this file only
// moves bytes between the bindings and those functions.
//
// The dashboard API (GET /api/cdp/metrics, /searches, /events, /profiles/{id}, /identity,
// /people/{key}; a person takes a second read, its browsers' events) reads Supabase's Postgres
// through the Hyperdrive binding: wasm checks access and parameters and hands back one
// read-only statement, this file runs it in a repeatable-read transaction, and wasm turns the
// row into the answer (the same plan, SQL and body as `cdp serve`). The rollups are folded at
// the edge too, with the Postgres store's statements and the core's fold (wasm `Fold`): after
// each delivered batch, before each dashboard read, and on the Cron Trigger.
//
// Flow: POST /collect -> checks in wasm -> each visitor's events to that visitor's Durable
// Object (serialised: load profile, apply, enqueue rows, save) -> answer. The queue consumer
// writes rows to Supabase REST, acks after a 2xx, retries with backoff, and refused or
// exhausted messages end in the dead-letter queue, whose consumer keeps them in KV.

import { DurableObject } from "cloudflare:workers";
import postgres from "postgres";
import wasmModule from "../pkg/cdp_wasm_bg.wasm";
import { initSync, Engine, Delivery, Fold, is_event_row, retry_delay_seconds } from "../pkg/cdp_wasm.js";

initSync({ module: wasmModule });

// One Engine per isolate, built from the environment on first use. A bad configuration fails
// every request with the reason in the log, never silently.
let engine;
function engineFor(env) {
  if (!engine) {
    engine = new Engine(
      env.CDP_CONFIG_TOML ?? "",
      env.CDP_ALLOWED_ORIGINS ?? "",
      Number(env.CDP_MAX_BODY_BYTES ?? 0),
    );
  }
  return engine;
}

function send(reply) {
  const r = typeof reply === "string" ? JSON.parse(reply) : reply;
  return new Response(r.body === "" ? null : r.body, { status: r.status, headers: r.headers });
}

function log(level, msg, fields) {
  console[level](JSON.stringify({ msg, ...fields }));
}

// Time is an argument of the core. Tests fix it per request, and only when the test binding
// CDP_TEST_MODE is "1" (never set in wrangler.toml); production always uses the clock.
function nowMs(request, env) {
  if (env.CDP_TEST_MODE === "1") {
    const fixed = request.headers.get("x-cdp-test-now");
    if (fixed) return Date.parse(fixed);
  }
  return Date.now();
}

// Reads at most `cap + 1` bytes, so an oversized body is refused without buffering it whole.
// The rest of a refused body is then read and thrown away (up to `discard` bytes, the rule
// `cdp serve` follows): a client that writes its whole body before it reads the answer would
// otherwise see the connection reset over the unread bytes instead of the 413.
async function readCapped(request, cap, discard) {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > cap) {
      let dropped = 0;
      while (dropped <= discard) {
        const next = await reader.read();
        if (next.done) break;
        dropped += next.value.byteLength;
      }
      if (dropped > discard) await reader.cancel();
      break;
    }
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

// The tombstones of erased people (cdp_tombstones, written by `cdp serve`'s erasure on the same
// database), read through Supabase REST at most once a minute per isolate when the secret
// CDP_TOMBSTONE_KEY is set. A failed read keeps the last set (and says so); until the first
// read succeeds nothing is suppressed.
const TOMBSTONES_EVERY_MS = 60_000;
let tombstonesReadAt = 0;
async function readTombstones(env, e) {
  if (!env.CDP_TOMBSTONE_KEY || Date.now() - tombstonesReadAt < TOMBSTONES_EVERY_MS) return;
  tombstonesReadAt = Date.now();
  const headers = { apikey: env.SUPABASE_SERVICE_KEY, authorization: `Bearer ${env.SUPABASE_SERVICE_KEY}` };
  const schema = schemaOf(env);
  if (schema !== "public") headers["accept-profile"] = schema;
  const url = `${env.SUPABASE_URL.replace(/\/+$/, "")}/rest/v1/cdp_tombstones?${e.tombstones_query()}`;
  try {
    const res = await fetch(url, { headers });
    const body = await res.text();
    if (!res.ok) throw new Error(`status ${res.status}`);
    e.set_tombstones(env.CDP_TOMBSTONE_KEY, body);
  } catch (err) {
    log("error", "could not read the tombstones of erased people; keeping the last ones read", { error: String(err.message ?? err) });
  }
}

async function collect(request, env, origin) {
  const e = engineFor(env);
  const now = nowMs(request, env);
  await readTombstones(env, e);
  const h = request.headers;
  const discard = e.discard_bytes(h.get("expect") ?? undefined, h.get("content-length") ?? undefined);
  const body = await readCapped(request, e.max_body_bytes(), discard);
  const checked = JSON.parse(
    e.check_collect(origin ?? undefined, h.get("content-type") ?? undefined,
      h.get("content-length") ?? undefined, body, now),
  );
  if (checked.reply) return send(checked.reply);
  for (const payload of checked.sampled) log("log", "sampled payload", { payload });

  const outcomes = new Array(checked.events.length);
  // Events that carry an erased person's identifier go nowhere, and are counted in the log.
  const suppressed = JSON.parse(e.suppressed(JSON.stringify(checked.events)));
  suppressed.forEach((s, i) => { if (s) outcomes[i] = "suppressed"; });
  const dropped = suppressed.filter(Boolean).length;
  if (dropped > 0) log("warn", "events of erased people suppressed", { events: dropped });
  const visits = Object.entries(checked.visitors)
    .map(([visitor, all]) => [visitor, all.filter((i) => !suppressed[i])])
    .filter(([, indices]) => indices.length > 0);
  try {
    await Promise.all(visits.map(async ([visitor, indices]) => {
      const stub = env.VISITORS_DO.get(env.VISITORS_DO.idFromName(visitor));
      const res = await stub.visit(indices.map((i) => checked.events[i]), now);
      if (!res.ok) throw new Error(res.error);
      res.outcomes.forEach((o, k) => { outcomes[indices[k]] = o; });
    }));
  } catch (err) {
    log("error", "visitor update failed; nothing acknowledged", { error: String(err) });
    return send(e.error_reply("store_unavailable", origin ?? undefined));
  }
  return send(e.collect_reply(JSON.stringify(checked.checked), JSON.stringify(outcomes), origin ?? undefined));
}

// Test mode only: the per-event core work of /collect (check, validate, apply, profile to and
// from JSON) `reps` times over `events` for one visitor, with no I/O, so the caller can time
// the CPU cost per event in workerd from the outside.
function bench({ events, now, reps }, e) {
  const enc = new TextEncoder();
  const bodies = events.map((ev) => enc.encode(JSON.stringify(ev)));
  let n = 0;
  for (let r = 0; r < reps; r++) {
    let profile;
    for (const body of bodies) {
      const c = JSON.parse(e.check_collect(undefined, "application/json", undefined, body, now));
      const visit = JSON.parse(e.apply(profile, JSON.stringify(c.events), now));
      profile = JSON.stringify(visit.profile);
      n++;
    }
  }
  return Response.json({ events: n });
}

// Runs `use` with a Postgres client through Hyperdrive (one connection, values as Postgres
// sends them), ended afterwards whatever happens.
async function withDatabase(env, use) {
  if (!env.HYPERDRIVE) throw new Error("no HYPERDRIVE binding: see docs/deploy-cloudflare.md");
  const sql = postgres(env.HYPERDRIVE.connectionString, {
    max: 1, fetch_types: false, prepare: false, connect_timeout: 10, onnotice: () => {},
  });
  try {
    return await use(sql);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

const schemaOf = (env) => env.SUPABASE_SCHEMA ?? "public";

// Most events one fold transaction takes (as `cdp serve`'s Postgres fold).
const FOLD_EVENTS = 100000;

// Folds the pending events into the rollups, a batch per transaction, until none is
// pending; the statements and the fold are wasm's (Fold). Returns how many it folded.
async function foldRollups(env, sql) {
  const schema = schemaOf(env);
  let total = 0;
  for (;;) {
    const f = new Fold(schema, FOLD_EVENTS);
    try {
      await sql.begin(async (tx) => {
        for (let s; (s = f.next_statement()) !== undefined;) {
          const st = JSON.parse(s);
          f.answer(JSON.stringify(await tx.unsafe(st.sql, st.params).values()));
        }
      });
      const n = f.folded();
      total += n;
      if (n < FOLD_EVENTS) return total;
    } finally {
      f.free();
    }
  }
}

// Folds with a connection of its own, logging instead of throwing: a fold that fails is
// retried by the next batch, the next dashboard read and the Cron Trigger.
let warnedNoHyperdrive = false;
async function foldQuietly(env, why) {
  if (!env.HYPERDRIVE) {
    // A collector-only deployment (no dashboard at the edge): said once per isolate.
    if (!warnedNoHyperdrive) {
      warnedNoHyperdrive = true;
      log("warn", "no HYPERDRIVE binding: the rollups are not folded here; see docs/deploy-cloudflare.md", { why });
    }
    return;
  }
  try {
    const n = await withDatabase(env, (sql) => foldRollups(env, sql));
    if (n > 0) log("log", "rollups folded", { events: n, why });
  } catch (err) {
    log("error", "rollup fold failed", { why, error: String(err.message ?? err) });
  }
}

// Step 1 of a dashboard request in wasm: an answer at once, or the statement to run.
function planDashboard(e, request, env, url) {
  return JSON.parse(e.dashboard_request(url.pathname, JSON.stringify(Object.fromEntries(url.searchParams)),
    request.headers.get("authorization") ?? undefined, request.headers.get("cookie") ?? undefined,
    env.CDP_ADMIN_TOKEN ?? "", schemaOf(env), nowMs(request, env)));
}

// The planned statement's one row (as JSON text), read in one snapshot.
async function readRow(sql, planned) {
  const rows = await sql.begin("isolation level repeatable read read only",
    (tx) => tx.unsafe(planned.sql, planned.params).values());
  return JSON.stringify(rows[0] ?? []);
}

// Runs one dashboard read: the statement wasm planned, in a read-only repeatable-read
// transaction (one snapshot), on a connection through Hyperdrive. Values stay as Postgres
// sent them: JSON columns parsed, nothing else converted.
async function dashboard(request, env, url) {
  const e = engineFor(env);
  const planned = planDashboard(e, request, env, url);
  if (planned.reply) return send(planned.reply);
  let state = JSON.stringify(planned.state);
  try {
    return await withDatabase(env, async (sql) => {
      // The rollups trail the delivered events by up to one fold: fold what is pending
      // first, so the answer counts every event stored before this request (as `cdp serve`).
      await foldRollups(env, sql);
      let answer = JSON.parse(e.dashboard_answer(state, await readRow(sql, planned), undefined, undefined, undefined));
      // A person's answer may need a second read: the events of the browsers the log names.
      // The log can change in between, so wasm may ask again; a third time is not asked.
      for (let reads = 1; answer.next && reads < 3; reads++) {
        state = JSON.stringify(answer.next.state);
        answer = JSON.parse(e.dashboard_answer(state, await readRow(sql, answer.next), undefined, undefined, undefined));
      }
      if (answer.next) throw new Error("the identity log kept changing while the person was read");
      return send(answer);
    });
  } catch (err) {
    // What the server said (SQLSTATE, severity), if anything: wasm tells offline from failed.
    const known = err instanceof postgres.PostgresError;
    const sqlstate = known ? err.code : undefined;
    log("error", "dashboard read failed", { sqlstate, error: String(err.message ?? err) });
    return send(e.dashboard_answer(state, undefined, sqlstate, String(err.message ?? err),
      known ? err.severity : undefined));
  }
}

// Test mode only: one real dashboard read of `path` (for its row), then the wasm work of a
// dashboard request (plan, then answer from that row) `reps` times with no I/O, so the caller
// can time the CPU cost per request in workerd from the outside.
async function benchDashboard({ path, reps }, request, env, e) {
  const url = new URL(path, "http://bench.test");
  const planned = planDashboard(e, request, env, url);
  const columns = await withDatabase(env, (sql) => readRow(sql, planned));
  let bytes = 0;
  for (let r = 0; r < reps; r++) {
    const p = planDashboard(e, request, env, url);
    bytes += e.dashboard_answer(JSON.stringify(p.state), columns, undefined, undefined, undefined).length;
  }
  return Response.json({ reps, bytes });
}

// GET /health: the Worker's own last event (KV) and, with the HYPERDRIVE binding, whether
// the store answers (its newest row), waiting at most 2 s for it as `cdp serve` does.
async function health(e, env, origin) {
  const kv = (await env.CDP_KV.get("last_event_at")) ?? undefined;
  if (!env.HYPERDRIVE) return e.health(kv, origin, undefined, undefined);
  const { sql: text, params } = JSON.parse(e.health_read(schemaOf(env)));
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("no answer within 2 s")), 2000); });
  const read = withDatabase(env, (sql) => sql.unsafe(text, params).values());
  read.catch(() => {}); // a read that loses the race must not surface as unhandled
  try {
    const [[at]] = await Promise.race([read, late]);
    const stored = at == null ? undefined : new Date(at).toISOString();
    return e.health(kv, origin, "ok", stored);
  } catch (err) {
    log("warn", "health: the store did not answer", { error: String(err.message ?? err) });
    return e.health(kv, origin, "unreachable", undefined);
  } finally {
    clearTimeout(timer);
  }
}

// The admin pages: wasm decides (login, cookie, guard, which build file with which
// headers); the dashboard build itself is the Workers static assets (ASSETS binding), read
// only after the guard admitted the request (run_worker_first in wrangler.toml).
async function adminPage(request, env, url) {
  const e = engineFor(env);
  const form = request.method === "POST" ? await request.text() : undefined;
  const step = JSON.parse(e.admin_request(request.method, url.pathname, form,
    request.headers.get("authorization") ?? undefined, request.headers.get("cookie") ?? undefined,
    env.CDP_ADMIN_TOKEN ?? "", url.protocol === "https:", nowMs(request, env)));
  if (step.reply) {
    if (step.reply.delay_ms) await sleep(step.reply.delay_ms);
    return send(step.reply.reply);
  }
  const { asset, index, headers, missing } = step.asset;
  const file = env.ASSETS ? await env.ASSETS.fetch(new URL(`/${asset}`, url)) : null;
  if (!file || file.status !== 200) return send(missing);
  const body = index ? e.dashboard_page(await file.text()) : file.body;
  return new Response(request.method === "HEAD" ? null : body, { status: 200, headers });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function route(request, env) {
  const e = engineFor(env);
  const origin = request.headers.get("origin");
  const o = origin ?? undefined;
  const url = new URL(request.url);
  const { pathname } = url;
  if (request.method === "OPTIONS") return send(e.preflight(o));
  if (pathname.startsWith("/api/cdp/")) {
    if (request.method !== "GET") return send(e.error_reply("method_not_allowed", o));
    return dashboard(request, env, url);
  }
  if (pathname === "/admin" || pathname.startsWith("/admin/")) return adminPage(request, env, url);
  if (pathname === "/collect") {
    if (request.method === "POST") return collect(request, env, origin);
    return send(e.error_reply("method_not_allowed", o));
  }
  if (pathname === "/__bench" && env.CDP_TEST_MODE === "1" && request.method === "POST") {
    return bench(await request.json(), e);
  }
  if (pathname === "/__bench_dashboard" && env.CDP_TEST_MODE === "1" && request.method === "POST") {
    return benchDashboard(await request.json(), request, env, e);
  }
  if (pathname === "/health") {
    if (request.method !== "GET") return send(e.error_reply("method_not_allowed", o));
    return send(await health(e, env, o));
  }
  return send(e.error_reply("not_found", o));
}

// The golden profile of one visitor. Each visit runs under blockConcurrencyWhile, so no other
// event for this visitor starts until the profile is saved: load, apply, enqueue, save is one
// serialised step even though enqueueing awaits the network. Rows are enqueued BEFORE the
// profile is saved and before the Worker answers; if enqueueing fails nothing is saved and the
// client is told to retry.
export class Visitor extends DurableObject {
  async visit(events, now) {
    const e = engineFor(this.env);
    return this.ctx.blockConcurrencyWhile(async () => {
      try {
        const stored = await this.ctx.storage.get("profile");
        const visit = JSON.parse(e.apply(stored ?? undefined, JSON.stringify(events), now));
        const rows = visit.steps.filter((s) => s.row).map((s) => ({ body: s.row, contentType: "json" }));
        for (let i = 0; i < rows.length; i += 100) await this.env.EVENTS.sendBatch(rows.slice(i, i + 100));
        const ttlMs = e.profile_ttl_days() * 86400 * 1000;
        await this.ctx.storage.put({
          profile: JSON.stringify(visit.profile),
          kv_dirty: true,
          expires_at_ms: Date.now() + ttlMs,
        });
        // KV takes one write per second per key: the alarm copies the latest profile at most
        // that often, however many events arrive.
        const alarm = await this.ctx.storage.getAlarm();
        if (alarm === null || alarm > Date.now() + 1000) await this.ctx.storage.setAlarm(Date.now() + 1000);
        return { ok: true, outcomes: visit.steps.map((s) => s.outcome) };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    });
  }

  // Copies the profile to KV `visitor:{id}` (30-day TTL) when it changed, and deletes the
  // object's state once the profile has expired (the core also ignores an expired profile).
  async alarm() {
    const e = engineFor(this.env);
    const { profile, kv_dirty: dirty, expires_at_ms: expires } = Object.fromEntries(
      await this.ctx.storage.get(["profile", "kv_dirty", "expires_at_ms"]),
    );
    if (expires !== undefined && Date.now() >= expires) {
      await this.ctx.storage.deleteAll();
      return;
    }
    if (dirty && profile) {
      const id = JSON.parse(profile).anonymous_id;
      await this.env.CDP_KV.put(`visitor:${id}`, profile, {
        expirationTtl: e.profile_ttl_days() * 86400,
      });
      await this.ctx.storage.delete("kv_dirty");
    }
    if (expires !== undefined) await this.ctx.storage.setAlarm(expires);
  }
}

// KV takes one write per second per key; liveness is written at most that often per isolate.
let lastLivenessWrite = 0;

async function deliver(batch, env) {
  const rows = [];
  const messages = [];
  for (const msg of batch.messages) {
    const text = JSON.stringify(msg.body);
    if (is_event_row(text)) {
      rows.push(msg.body);
      messages.push(msg);
    } else {
      // Not a row at all: retrying cannot help, keep it for review.
      await env.DEAD_LETTER.send({ reason: "not an event row", body: msg.body, failed_at: new Date().toISOString() });
      msg.ack();
    }
  }
  if (messages.length === 0) return;
  const d = new Delivery(JSON.stringify(rows));
  const base = `${env.SUPABASE_URL.replace(/\/+$/, "")}/rest/v1`;
  const schema = schemaOf(env);
  for (let req; (req = d.next_request()) !== undefined;) {
    const r = JSON.parse(req);
    const headers = {
      apikey: env.SUPABASE_SERVICE_KEY,
      authorization: `Bearer ${env.SUPABASE_SERVICE_KEY}`,
      "content-type": "application/json",
      prefer: r.prefer,
    };
    if (schema !== "public") headers["content-profile"] = schema;
    try {
      const res = await fetch(`${base}/${r.table}?${r.query}`, { method: r.method, headers, body: r.body });
      const retryAfter = Number.parseInt(res.headers.get("retry-after") ?? "", 10);
      d.answer(res.status, await res.text(), Number.isFinite(retryAfter) ? retryAfter : undefined);
    } catch (err) {
      d.network_error(String(err));
    }
  }
  const end = JSON.parse(d.end());
  if (end.state === "retry") {
    log("error", "sink write failed", {
      event_types: end.event_types.join(","), status: end.status, error: end.message, messages: messages.length,
    });
    for (const msg of messages) {
      msg.retry({ delaySeconds: retry_delay_seconds(msg.attempts, end.retry_after ?? undefined) });
    }
    return;
  }
  for (const dead of end.dead) {
    log("error", "sink refused a row; dead-lettered", {
      event_type: dead.row.event_type ?? "search", status: dead.status, error: dead.error,
    });
    await env.DEAD_LETTER.send({ reason: "refused by the sink", table: dead.table, status: dead.status,
      error: dead.error, row: dead.row, failed_at: new Date().toISOString() });
  }
  for (const msg of messages) msg.ack();
  await foldQuietly(env, "batch delivered");
  if (Date.now() - lastLivenessWrite >= 1000) {
    lastLivenessWrite = Date.now();
    await env.CDP_KV.put("last_event_at", new Date().toISOString()).catch((err) =>
      log("warn", "last_event_at not written", { error: String(err) }));
  }
}

// Dead letters are kept in KV without expiry, one key per message, for review and replay.
async function keepDeadLetters(batch, env) {
  for (const msg of batch.messages) {
    const b = msg.body ?? {};
    // A message exhausted by retries arrives as the row itself; a refused one is wrapped.
    const letter = b.row || b.reason ? b : { reason: "retries exhausted", row: b, failed_at: new Date().toISOString() };
    const eventId = letter.row?.event_id ?? "unknown";
    await env.CDP_KV.put(`dead-letter:${eventId}:${msg.id}`, JSON.stringify(letter));
    log("error", "dead letter kept", { key: `dead-letter:${eventId}:${msg.id}`, reason: letter.reason });
    msg.ack();
  }
}

export default {
  async fetch(request, env) {
    try {
      return await route(request, env);
    } catch (err) {
      log("error", "request failed", { error: String(err) });
      try {
        return send(engineFor(env).error_reply("internal", request.headers.get("origin") ?? undefined));
      } catch {
        return new Response(JSON.stringify({ error: "internal", problems: [{ field: "server", rule: String(err) }] }),
          { status: 500, headers: { "content-type": "application/json" } });
      }
    }
  },

  async queue(batch, env) {
    if (batch.queue === env.DEAD_LETTER_QUEUE_NAME) return keepDeadLetters(batch, env);
    return deliver(batch, env);
  },

  // The Cron Trigger: a safety net that folds whatever a failed fold left pending.
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(foldQuietly(env, "cron"));
  },
};
