// The edge dashboard's figures (issue 14): p50/p95 of GET /api/cdp/metrics?range=30d from the
// built Worker in workerd (miniflare) reading a Postgres database through its HYPERDRIVE
// binding, and the CPU time of one request's wasm work (plan and answer, no I/O). Load the
// data first with `cdp bench-metrics`, which also prints cdp serve's figures on it:
//
//   cdp bench-metrics --events 100000 --postgres-only \
//     --postgres-url postgres://postgres@127.0.0.1:5432/bench_edge
//   (cd worker && npx wrangler deploy --dry-run --outdir dist/test)
//   BENCH_DATABASE_URL=postgres://postgres:unused@127.0.0.1:5432/bench_edge node worker/bench-dashboard.mjs
import { Miniflare } from "miniflare";
import { join } from "node:path";
import { bundleOptions, workerBindings } from "./test-support.js";

const TOKEN = "bench-dashboard-admin-token";
const db = process.env.BENCH_DATABASE_URL ?? "postgres://postgres:unused@127.0.0.1:5432/bench_edge";
const requests = Number(process.env.BENCH_REQUESTS ?? 100);

process.env.BUNDLE_DIR ??= join(import.meta.dirname, "dist/test");
const mf = new Miniflare({
  ...bundleOptions(),
  hyperdrives: { HYPERDRIVE: db },
  bindings: workerBindings({
    rest: "http://127.0.0.1:9", key: "unused", schema: "cdp_bench", origin: "https://example.test", token: TOKEN,
  }),
});
const headers = { authorization: `Bearer ${TOKEN}` };
const path = "/api/cdp/metrics?range=30d";
const ms = [];
for (let i = 0; i < requests + 3; i++) {
  const t = process.hrtime.bigint();
  const res = await mf.dispatchFetch(`http://worker.test${path}`, { headers });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  if (i === 0) console.log(`events in the window: ${body.kpis.events.value}`);
  if (i >= 3) ms.push(Number(process.hrtime.bigint() - t) / 1e6);
}
ms.sort((a, b) => a - b);
const q = (p) => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)];
console.log(`${path} from the Worker: p50 ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, ` +
  `max ${ms[ms.length - 1].toFixed(1)} ms (${ms.length} requests)`);

// CPU: the wasm work alone, repeated; no I/O happens in the loop, so its wall time is CPU time.
const run = async (reps) => {
  const t = process.hrtime.bigint();
  const res = await mf.dispatchFetch("http://worker.test/__bench_dashboard", {
    method: "POST", headers, body: JSON.stringify({ path, reps }),
  });
  await res.json();
  return Number(process.hrtime.bigint() - t) / 1e6;
};
await run(2);
let best = Infinity;
for (let i = 0; i < 5; i++) best = Math.min(best, (await run(50)) - (await run(0)));
console.log(`CPU per dashboard request's wasm work in workerd: ${(best / 50).toFixed(2)} ms (best of 5 runs of 50)`);
await mf.dispose();
