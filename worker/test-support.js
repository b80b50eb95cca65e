// Helpers both Worker test files use (kept out of test/, where node --test would run it).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { join } from "node:path";

export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the Worker tests through worker/test.sh`);
  return v;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

// A port the OS just handed out and released, so parallel runs never pick the same one.
export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer().once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

// The Miniflare options every test Worker shares: the wrangler bundle (BUNDLE_DIR) with its
// wasm module, wrangler.toml's date and flags, the bindings the code always touches, and the
// queue consumers (retrying at most `maxRetries` times). Each test adds its Hyperdrive and
// variables.
export function bundleOptions({ maxRetries = 10 } = {}) {
  return {
    modules: true,
    scriptPath: join(need("BUNDLE_DIR"), "index.js"),
    // Module names relative to the bundle, whatever directory the tests run from.
    modulesRoot: need("BUNDLE_DIR"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-09-01",
    compatibilityFlags: ["nodejs_compat"],
    kvNamespaces: ["CDP_KV"],
    durableObjects: { VISITORS_DO: "Visitor" },
    queueProducers: { EVENTS: { queueName: "events" }, DEAD_LETTER: { queueName: "events-dlq" } },
    // wrangler.toml's [assets]: the dashboard build, behind the Worker.
    assets: {
      directory: join(import.meta.dirname, "../dashboard/dist"),
      binding: "ASSETS",
      routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
      assetConfig: { html_handling: "none", not_found_handling: "none" },
    },
    queueConsumers: {
      events: { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries, deadLetterQueue: "events-dlq" },
      "events-dlq": { maxBatchSize: 10, maxBatchTimeout: 1 },
    },
  };
}

// The variables every test Worker gets: Supabase REST at `rest` with service key `key`,
// tables in `schema`, browsers allowed from `origin`, the dead-letter queue's name (as
// bundleOptions names it), the admin token when one is given, and test mode (tests may fix
// "now" with x-cdp-test-now) unless `testMode` is false.
export function workerBindings({ rest, key, schema, origin, token, tombstoneKey, testMode = true }) {
  return {
    SUPABASE_URL: rest,
    SUPABASE_SERVICE_KEY: key,
    SUPABASE_SCHEMA: schema,
    CDP_ALLOWED_ORIGINS: origin,
    DEAD_LETTER_QUEUE_NAME: "events-dlq",
    ...(testMode ? { CDP_TEST_MODE: "1" } : {}),
    ...(token ? { CDP_ADMIN_TOKEN: token } : {}),
    ...(tombstoneKey ? { CDP_TOMBSTONE_KEY: tombstoneKey } : {}),
  };
}

// The PostgREST stand-in (cdp-adapters example postgrest_standin, STANDIN_BIN) over the real
// Postgres (CDP_TEST_DATABASE_URL, or `databaseUrl`), answering with service key `key`: its
// REST URL, a fresh migrated schema per `newSchema()`, and `stop()` (which drops its schemas).
export async function startStandin(key, { databaseUrl } = {}) {
  const env = databaseUrl ? { ...process.env, CDP_TEST_DATABASE_URL: databaseUrl } : process.env;
  const proc = spawn(need("STANDIN_BIN"), [key], { stdio: ["pipe", "pipe", "inherit"], env });
  const line = await new Promise((ok, fail) => {
    const rl = createInterface({ input: proc.stdout });
    rl.once("line", ok);
    proc.once("exit", (code) => fail(new Error(`PostgREST stand-in exited (${code}); is Postgres up?`)));
  });
  const { rest_url: rest, control_url: control } = JSON.parse(line);
  return {
    rest,
    // A call of the control API (GET without a body, else POST of JSON).
    async ctl(path, body) {
      const res = await fetch(`${control}${path}`, body === undefined ? {} : {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`stand-in control ${path} answered ${res.status}`);
      return res.json();
    },
    async newSchema() {
      return (await this.ctl("/schema", {})).schema;
    },
    stop() {
      proc.stdin.end();
    },
  };
}
