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
import { bundleOptions, need, sleep, startStandin, waitFor, freePort, workerBindings } from "../test-support.js";

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
    "--database-url", dbUrl(db), "--allowed-origins", ORIGIN, "--admin-token", TOKEN,
    "--tombstone-key", "dashboard test tombstone key, 32 bytes or more"],
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
    bindings: workerBindings({ rest, key: KEY, schema, origin: ORIGIN, token }),
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
    // Key for key in the same order too (the dashboard and its tests walk them in order).
    assert.equal(JSON.stringify(withoutGeneratedAt(got).body), JSON.stringify(withoutGeneratedAt(want).body), range);
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
    assert.equal(JSON.stringify(got.body), JSON.stringify(want.body), `${q}: key order`);
  }
  const all = await read(await fetch(`${serve}/api/cdp/events?limit=100`, { headers: bearer }));
  assert.ok(all.body.events.length > 20, "the stream holds the journeys' events");
});

// `want` (cdp serve's answer, read between the instants of `early` and `late`, the Worker's
// answers at those two instants) equals them except that each number lies between its two
// values (give or take the last rounded digit): a profile's explanation decays to `now`, and
// `cdp serve`'s clock cannot be pinned to the Worker's instant.
function assertBetween(early, late, want, where = "") {
  if (typeof want === "number" && typeof early === "number" && typeof late === "number") {
    const [lo, hi] = [Math.min(early, late) - 1e-6, Math.max(early, late) + 1e-6];
    assert.ok(lo <= want && want <= hi, `${where}: ${want} not within [${early}, ${late}]`);
  } else if (want && typeof want === "object" && early && typeof early === "object" && late && typeof late === "object") {
    assert.deepEqual(Object.keys(early).sort(), Object.keys(want).sort(), where);
    for (const k of Object.keys(want)) assertBetween(early[k], late?.[k], want[k], `${where}.${k}`);
  } else {
    assert.deepEqual(early, want, where);
    assert.deepEqual(late, want, where);
  }
}

test("a visitor's profile from the Worker is cdp serve's; an unknown one is not found alike", async () => {
  const ids = [...new Set(posted.map((e) => e.anonymous_id))];
  assert.ok(ids.length > 3, "the journeys have visitors");
  for (const id of ids) {
    const path = `/api/cdp/profiles/${encodeURIComponent(id)}`;
    const at = async (t) => read(await mf.dispatchFetch(`http://worker.test${path}`, {
      headers: { ...bearer, "x-cdp-test-now": t.toISOString() },
    }));
    const t0 = new Date();
    const want = await read(await fetch(`${serve}${path}`, { headers: bearer }));
    const t1 = new Date();
    assert.equal(want.status, 200, JSON.stringify(want.body));
    assert.equal(want.body.profile.anonymous_id, id);
    assertBetween(await at(t0), await at(t1), want, id);
  }
  for (const path of ["/api/cdp/profiles/no-such-visitor", "/api/cdp/profiles/a%20b%2Fc"]) {
    const want = await read(await fetch(`${serve}${path}`, { headers: bearer }));
    const got = await read(await mf.dispatchFetch(`http://worker.test${path}`, { headers: bearer }));
    assert.equal(want.status, 404, path);
    assert.deepEqual(got, want, path);
  }
  const unauthorized = await read(await mf.dispatchFetch(`http://worker.test/api/cdp/profiles/${ids[0]}`));
  assert.equal(unauthorized.status, 401);
});

test("people and the identity figures from the Worker are cdp serve's", async () => {
  // One person on two browsers (an identify, then an email signup with the same address in
  // capitals), a junk address on a third, stored through a cdp serve of their own (the other
  // tests compare the shared database's figures) and read by a Worker on that database.
  const db = await newDatabase();
  const serve = await startServe(db);
  const mf = await startWorker(dbUrl(db, { password: "unused" }));
  const tag = `${Date.now()}`;
  const [laptop, phone, kiosk] = [`laptop-${tag}`, `phone-${tag}`, `kiosk-${tag}`];
  const email = `rita-${tag}@example.org`;
  const at = (s) => new Date(Date.now() - 120_000 + s * 1000).toISOString();
  const send = (anon, event, properties, s) => ({
    v: 1, event, anonymous_id: anon, session_id: `${anon}-s`, timestamp: at(s),
    page_url: "https://southlandorganics.com/backyard", properties,
  });
  await collect(serve, [
    send(laptop, "page_view", {}, 0),
    { ...send(laptop, "identify", { email }, 1), customer_id: `c-${tag}` },
    send(phone, "email_signup", { email: email.toUpperCase(), source: "footer" }, 2),
    send(phone, "page_view", {}, 3),
    send(kiosk, "email_signup", { email: "test@test.com" }, 4),
  ]);
  const { want: ids, got: idsGot } = await both(serve, mf, "/api/cdp/identity");
  assert.equal(ids.status, 200, JSON.stringify(ids.body));
  assert.ok(ids.body.cross_device_people >= 1 && ids.body.rejections.test_email >= 1, JSON.stringify(ids.body));
  assert.deepEqual(idsGot, ids);

  const person = await read(await fetch(`${serve}/api/cdp/people/${encodeURIComponent(email)}`, { headers: bearer }));
  assert.equal(person.status, 200, JSON.stringify(person.body));
  for (const key of [email, email.toUpperCase(), laptop, phone, `c-${tag}`, person.body.person_id, kiosk]) {
    const path = `/api/cdp/people/${encodeURIComponent(key)}`;
    const at = async (t) => read(await mf.dispatchFetch(`http://worker.test${path}`, {
      headers: { ...bearer, "x-cdp-test-now": t.toISOString() },
    }));
    const t0 = new Date();
    const want = await read(await fetch(`${serve}${path}`, { headers: bearer }));
    const t1 = new Date();
    assert.equal(want.status, 200, `${key}: ${JSON.stringify(want.body)}`);
    assertBetween(await at(t0), await at(t1), want, key);
  }
  for (const key of ["no-such-visitor", "undefined", "test@test.com"]) {
    const path = `/api/cdp/people/${encodeURIComponent(key)}`;
    const want = await read(await fetch(`${serve}${path}`, { headers: bearer }));
    const got = await read(await mf.dispatchFetch(`http://worker.test${path}`, { headers: bearer }));
    assert.ok(want.status === 404 || want.status === 400, `${key}: ${want.status}`);
    assert.deepEqual(got, want, key);
  }
  const unauthorized = await read(await mf.dispatchFetch(`http://worker.test/api/cdp/people/${laptop}`));
  assert.equal(unauthorized.status, 401);
});

test("/health reads the store as cdp serve's does: reachable, and its newest row", async () => {
  const want = await read(await fetch(`${serve}/health`));
  const got = await read(await mf.dispatchFetch("http://worker.test/health"));
  assert.equal(got.status, 200);
  assert.equal(got.body.status, "ok");
  assert.equal(got.body.store, want.body.store);
  assert.equal(got.body.last_event_at, want.body.last_event_at);
  assert.ok(got.body.last_event_at, "the store holds events");
});

test("the OpenAPI document from the Worker is cdp serve's, behind the same token", async () => {
  const want = await read(await fetch(`${serve}/api/cdp/openapi.json`, { headers: bearer }));
  const got = await read(await mf.dispatchFetch("http://worker.test/api/cdp/openapi.json", { headers: bearer }));
  assert.equal(want.status, 200);
  assert.equal(want.body.openapi, "3.1.0");
  assert.deepEqual(got, want);
  const refused = await read(await mf.dispatchFetch("http://worker.test/api/cdp/openapi.json"));
  assert.equal(refused.status, 401);
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
  const health = await read(await down.dispatchFetch("http://worker.test/health"));
  assert.equal(health.status, 503);
  assert.equal(health.body.status, "degraded");
  assert.equal(health.body.store, "unreachable");
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

// The admin pages of both, headers that matter and body, for comparison.
async function page(res) {
  const headers = {};
  for (const h of ["content-type", "cache-control", "content-security-policy", "x-frame-options", "location", "referrer-policy"]) {
    const v = res.headers.get(h);
    if (v !== null) headers[h] = v;
  }
  return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()).toString("latin1") };
}

test("the dashboard at /admin/cdp/ is the build cdp serve embeds, behind the same sign-in", async () => {
  const manual = { redirect: "manual" };
  const pair = async (path, init = {}) => [
    await page(await fetch(`${serve}${path}`, { ...manual, ...init })),
    await page(await mf.dispatchFetch(`http://worker.test${path}`, { ...manual, ...init })),
  ];
  // Signed out: to the login page; the login page itself; /admin to the dashboard.
  for (const path of ["/admin/cdp/", "/admin/cdp/assets/x.js", "/admin/login", "/admin", "/admin/cdp"]) {
    const [want, got] = await pair(path);
    assert.ok([200, 303, 308].includes(want.status), `${path}: ${want.status}`);
    assert.deepEqual(got, want, path);
  }
  // With the token: the page and every file of the build, byte for byte; a file it lacks is 404.
  const dist = join(ROOT, "dashboard/dist");
  const files = readdirSync(dist, { recursive: true, withFileTypes: true }).filter((f) => f.isFile())
    .map((f) => join(f.parentPath ?? f.path, f.name).slice(dist.length + 1));
  assert.ok(files.some((f) => f.startsWith("assets/") && f.endsWith(".js")), "the build has a script");
  for (const path of ["", "visitor/some-id", ...files, "assets/not-in-the-build.js"]) {
    const [want, got] = await pair(`/admin/cdp/${path}`, { headers: bearer });
    assert.deepEqual(got, want, path);
    assert.equal(want.status, path.includes("not-in-the-build") ? 404 : 200, path);
    assert.ok(!got.body.includes(TOKEN) && !got.body.includes(KEY), `${path}: a secret in the answer`);
  }
  // A wrong token is refused alike; the right one sets a session that opens the page and the API.
  const form = (token) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `token=${encodeURIComponent(token)}` });
  const [wrongWant, wrongGot] = await pair("/admin/login", form("not-the-token"));
  assert.equal(wrongWant.status, 401);
  assert.deepEqual(wrongGot, wrongWant);
  const signedIn = await mf.dispatchFetch("http://worker.test/admin/login", { ...manual, ...form(TOKEN) });
  assert.equal(signedIn.status, 303);
  assert.equal(signedIn.headers.get("location"), "/admin/cdp/");
  const cookie = signedIn.headers.get("set-cookie");
  assert.match(cookie, /^cdp_admin_session=v1\.\d+\.[0-9a-f]{64}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
  assert.ok(!cookie.includes(TOKEN));
  const session = { cookie: cookie.split(";")[0] };
  assert.equal((await mf.dispatchFetch("http://worker.test/admin/cdp/", { ...manual, headers: session })).status, 200);
  assert.equal((await mf.dispatchFetch("http://worker.test/api/cdp/metrics", { headers: session })).status, 200);
  const secure = await mf.dispatchFetch("https://worker.test/admin/login", { ...manual, ...form(TOKEN) });
  assert.match(secure.headers.get("set-cookie"), /; Secure$/, "over https the cookie is Secure");
  const out = await mf.dispatchFetch("http://worker.test/admin/logout", { ...manual, method: "POST" });
  assert.equal(out.status, 303);
  assert.match(out.headers.get("set-cookie"), /^cdp_admin_session=; .*Max-Age=0/);
});

test("without an admin token secret the dashboard is closed and the login page says why", async () => {
  const closed = await startWorker(dbUrl(databases[0], { password: "unused" }), { token: "" });
  const res = await closed.dispatchFetch("http://worker.test/admin/cdp/", { redirect: "manual", headers: bearer });
  assert.equal(res.status, 303);
  const login = await closed.dispatchFetch("http://worker.test/admin/login");
  assert.match(await login.text(), /wrangler secret put CDP_ADMIN_TOKEN/);
  const post = await closed.dispatchFetch("http://worker.test/admin/login", {
    method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${TOKEN}`,
  });
  assert.equal(post.status, 401);
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
