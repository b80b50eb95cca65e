// The dashboard API at the edge: the built Worker in real workerd through miniflare, its
// HYPERDRIVE binding pointed at the real Postgres (miniflare passes the connection through
// to it as Cloudflare's Hyperdrive would to Supabase's database), against `cdp serve` over
// the same database: both answer every read, and the Worker must give the same JSON for the
// same `now`. Then the same events go in through the Worker (queue, Supabase REST played by
// the PostgREST stand-in over the real Postgres, the fold at the edge) and must count the same.
//   CDP_BIN      the `cdp` binary
//   BUNDLE_DIR   wrangler --dry-run --outdir output of the default environment
//   STANDIN_BIN  cdp-adapters example postgrest_standin
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import { Miniflare } from "miniflare";
import postgres from "postgres";
import { bundleOptions, need, sleep, startStandin, waitFor, freePort } from "../test-support.js";

const ROOT = resolve(import.meta.dirname, "../..");
const JOURNEYS = join(ROOT, "fixtures/journeys");
const ORIGIN = "https://southlandorganics.com";
const TOKEN = "edge-dashboard-admin-token";
const PG = new URL(process.env.CDP_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test");

// A database of its own per run, so `cdp serve` and the Worker share it and nothing else.
function dbUrl(name, { password } = {}) {
  const u = new URL(PG);
  u.pathname = `/${name}`;
  // Miniflare's Hyperdrive wants a password in the URL; trust auth ignores it.
  if (password) u.password = password;
  return u.toString();
}

const admin = postgres(PG.toString(), { max: 1, onnotice: () => {} });
const databases = [];
async function newDatabase() {
  const name = `cdp_edge_${process.pid}_${databases.length}`;
  await admin.unsafe(`drop database if exists ${name}`);
  await admin.unsafe(`create database ${name}`);
  databases.push(name);
  return name;
}

const serves = [];
async function startServe(db) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const p = spawn(need("CDP_BIN"), ["serve", "--listen", `127.0.0.1:${port}`,
    "--database-url", dbUrl(db), "--allowed-origins", ORIGIN, "--admin-token", TOKEN],
  { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, CDP_LOG: "warn" } });
  serves.push(p);
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${url}/health`)).ok) return url; } catch { /* not yet */ }
    if (i > 150) throw new Error("cdp serve did not start");
    await sleep(200);
  }
}

const workers = [];
const KEY = "worker-test-service-key";
async function startWorker(hyperdrive, { token = TOKEN, schema = "public", rest = "http://127.0.0.1:9" } = {}) {
  const mf = new Miniflare({
    ...bundleOptions(),
    hyperdrives: { HYPERDRIVE: hyperdrive },
    bindings: {
      SUPABASE_URL: rest,
      SUPABASE_SERVICE_KEY: KEY,
      SUPABASE_SCHEMA: schema,
      CDP_ALLOWED_ORIGINS: ORIGIN,
      DEAD_LETTER_QUEUE_NAME: "events-dlq",
      CDP_TEST_MODE: "1",
      ...(token ? { CDP_ADMIN_TOKEN: token } : {}),
    },
  });
  await mf.ready;
  workers.push(mf);
  return mf;
}

after(async () => {
  for (const mf of workers) await mf.dispose();
  standin?.stop();
  for (const p of serves) p.kill("SIGTERM");
  await sleep(500);
  for (const db of databases) await admin.unsafe(`drop database if exists ${db} with (force)`).catch(() => {});
  await admin.end();
});

// The fixture journeys' events, re-timed to spread over the last `days` days before `now`
// (each journey its own visitor, as in the fixtures), without ids so each is new.
function events(now, days) {
  const all = readdirSync(JOURNEYS).filter((f) => f.endsWith(".ndjson")).sort().flatMap((f) =>
    readFileSync(join(JOURNEYS, f), "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l).event));
  const span = days * 86400_000;
  return all.map((e, i) => {
    const { event_id, ...rest } = e;
    return { ...rest, timestamp: new Date(now - span + Math.floor((i + 0.5) * span / all.length)).toISOString() };
  });
}

async function collect(serve, list) {
  for (let i = 0; i < list.length; i += 50) {
    const res = await fetch(`${serve}/collect`, {
      method: "POST", headers: { "content-type": "application/json", origin: ORIGIN },
      body: JSON.stringify(list.slice(i, i + 50)),
    });
    assert.equal(res.status, 200, await res.text());
  }
}

async function read(res) {
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  const headers = {};
  for (const h of ["content-type", "cache-control", "retry-after"]) {
    const v = res.headers.get(h);
    if (v !== null) headers[h] = v;
  }
  return { status: res.status, headers, body };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

// The Worker's answer at the instant `cdp serve` answered (its window's end), so both count
// the same window.
async function both(serve, mf, path) {
  const want = await read(await fetch(`${serve}${path}`, { headers: bearer }));
  const now = want.body?.window?.end ?? new Date().toISOString();
  const got = await read(await mf.dispatchFetch(`http://worker.test${path}`, {
    headers: { ...bearer, "x-cdp-test-now": now },
  }));
  return { want, got };
}

const withoutGeneratedAt = ({ body, ...rest }) => {
  if (body && typeof body === "object") {
    const { generated_at, ...b } = body;
    return { ...rest, body: b };
  }
  return { ...rest, body };
};

let serve;
let mf;
let posted;
let standin;
before(async () => {
  standin = await startStandin(KEY);
  const db = await newDatabase();
  serve = await startServe(db);
  mf = await startWorker(dbUrl(db, { password: "unused" }));
  posted = events(Date.now() - 60_000, 6);
  await collect(serve, posted);
});

test("metrics from the Worker are cdp serve's, for 24h, 7d and 30d", async () => {
  for (const range of ["24h", "7d", "30d"]) {
    const { want, got } = await both(serve, mf, `/api/cdp/metrics?range=${range}`);
    assert.equal(want.status, 200, JSON.stringify(want.body));
    assert.equal(want.body.status, "ok", `${range}: cdp serve counted nothing`);
    assert.ok(want.body.kpis.events.value > 0, `${range}: no events counted`);
    assert.deepEqual(withoutGeneratedAt(got), withoutGeneratedAt(want), range);
  }
});

test("searches from the Worker are cdp serve's", async () => {
  for (const range of ["24h", "7d", "30d"]) {
    const { want, got } = await both(serve, mf, `/api/cdp/searches?range=${range}`);
    assert.equal(want.status, 200);
    assert.deepEqual(got, want, range);
  }
  const { want } = await both(serve, mf, "/api/cdp/searches?range=30d");
  assert.ok(want.body.total.value > 0, "the journeys' searches were counted");
});

test("the event stream from the Worker is cdp serve's, filtered alike", async () => {
  for (const q of ["", "?limit=5", "?type=page_view", "?persona=backyard&limit=100", "?type=search_performed&persona=lawn"]) {
    const want = await read(await fetch(`${serve}/api/cdp/events${q}`, { headers: bearer }));
    const got = await read(await mf.dispatchFetch(`http://worker.test/api/cdp/events${q}`, { headers: bearer }));
    assert.equal(want.status, 200, JSON.stringify(want.body));
    assert.deepEqual(got, want, q);
  }
  const all = await read(await fetch(`${serve}/api/cdp/events?limit=100`, { headers: bearer }));
  assert.ok(all.body.events.length > 20, "the stream holds the journeys' events");
});

test("a bad range, no token and a wrong token are refused as cdp serve refuses them", async () => {
  const cases = [
    ["bad range", "/api/cdp/metrics?range=12y", bearer],
    ["bad limit", "/api/cdp/events?limit=0", bearer],
    ["bad type", "/api/cdp/events?type=nope", bearer],
    ["bad persona", "/api/cdp/events?persona=nope", bearer],
    ["no token", "/api/cdp/metrics?range=7d", {}],
    ["wrong token", "/api/cdp/metrics?range=7d", { authorization: "Bearer not-the-admin-token" }],
    ["wrong scheme", "/api/cdp/searches", { authorization: `Basic ${TOKEN}` }],
  ];
  for (const [name, path, headers] of cases) {
    const want = await read(await fetch(`${serve}${path}`, { headers }));
    const got = await read(await mf.dispatchFetch(`http://worker.test${path}`, { headers }));
    assert.ok(want.status === 400 || want.status === 401, `${name}: cdp serve answered ${want.status}`);
    assert.deepEqual(got, want, name);
  }
});

test("without an admin token secret the Worker's dashboard API refuses everyone", async () => {
  const open = await startWorker(dbUrl(databases[0], { password: "unused" }), { token: "" });
  const got = await read(await open.dispatchFetch("http://worker.test/api/cdp/metrics", { headers: bearer }));
  assert.equal(got.status, 401);
});

test("an empty database is empty, not an error", async () => {
  const db = await newDatabase();
  const emptyServe = await startServe(db); // creates the schema, as a deployment's migration does
  const empty = await startWorker(dbUrl(db, { password: "unused" }));
  const { want, got } = await both(emptyServe, empty, "/api/cdp/metrics?range=7d");
  assert.equal(got.status, 200);
  assert.equal(got.body.status, "empty");
  assert.equal(got.body.last_event_at, null);
  assert.deepEqual(withoutGeneratedAt(got), withoutGeneratedAt(want));
});

test("the database down is offline (503 with Retry-After), not an error", async () => {
  // A server that answers every connection's startup with Postgres's FATAL 57P03 ("the
  // database system is starting up": Supabase restarting), in the protocol's ErrorResponse
  // framing, then closes once the client has. (A port nothing listens on, or a connection
  // dropped at once, makes miniflare's Hyperdrive proxy throw in this process instead.)
  const fields = [["S", "FATAL"], ["V", "FATAL"], ["C", "57P03"], ["M", "the database system is starting up"]];
  const payload = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
  const frame = Buffer.alloc(5);
  frame.write("E", 0);
  frame.writeInt32BE(payload.length + 4, 1);
  const gone = createServer((s) => {
    s.on("error", () => {});
    s.once("data", () => s.write(Buffer.concat([frame, payload])));
    s.on("end", () => s.end());
  });
  await new Promise((ok) => gone.listen(0, "127.0.0.1", ok));
  const down = await startWorker(`postgres://postgres:unused@127.0.0.1:${gone.address().port}/nothing`);
  const got = await read(await down.dispatchFetch("http://worker.test/api/cdp/metrics?range=7d", { headers: bearer }));
  assert.equal(got.status, 503, JSON.stringify(got.body));
  assert.equal(got.body.status, "offline");
  assert.equal(got.headers["retry-after"], "5");
  assert.ok(!JSON.stringify(got).includes("unused"), "no connection secret in the answer");
  gone.close();
});

test("no secret in any dashboard answer", async () => {
  const texts = [];
  for (const path of ["/api/cdp/metrics?range=30d", "/api/cdp/searches", "/api/cdp/events", "/api/cdp/metrics?range=bad", "/api/cdp/nothing"]) {
    const res = await mf.dispatchFetch(`http://worker.test${path}`, { headers: bearer });
    texts.push(await res.text());
  }
  for (const t of texts) {
    assert.ok(!t.includes(TOKEN), "admin token in an answer");
    assert.ok(!t.includes("worker-test-service-key"), "service key in an answer");
    assert.ok(!t.includes("unused@"), "connection string in an answer");
  }
});

test("events posted to the Worker are folded at the edge and counted as cdp serve counts them", async () => {
  const schema = await standin.newSchema();
  const edge = await startWorker(dbUrl(PG.pathname.slice(1), { password: "unused" }), { schema, rest: standin.rest });
  for (let i = 0; i < posted.length; i += 50) {
    const res = await edge.dispatchFetch("http://worker.test/collect", {
      method: "POST", headers: { "content-type": "application/json", origin: ORIGIN },
      body: JSON.stringify(posted.slice(i, i + 50)),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const served = postgres(dbUrl(databases[0]), { max: 1 });
  const [{ n: want }] = await served`select count(*)::int as n from cdp_events`;
  await served.end();
  const q = (text) => admin.unsafe(text.replaceAll("S.", `"${schema}".`));
  // Delivered by the queue consumer, then folded by it: nothing left pending, before any read.
  await waitFor("every event delivered to Supabase", async () =>
    (await q("select count(*)::int as n from S.cdp_events"))[0].n === want);
  await waitFor("the consumer's fold", async () =>
    (await q("select count(*)::int as n from S.cdp_rollup_pending"))[0].n === 0);
  assert.ok((await q("select count(*)::int as n from S.cdp_counters"))[0].n > 0, "counters folded");
  for (const range of ["24h", "7d", "30d"]) {
    const { want: w, got } = await both(serve, edge, `/api/cdp/metrics?range=${range}`);
    assert.equal(w.body.status, "ok");
    assert.deepEqual(withoutGeneratedAt(got), withoutGeneratedAt(w), range);
  }
  const { want: ws, got: gs } = await both(serve, edge, "/api/cdp/searches?range=7d");
  assert.deepEqual(gs, ws);
});
