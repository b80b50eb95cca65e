// The Worker as a server of its own, for the dashboard's browser suite (see
// dashboard-target.js, which starts this process): the built Worker in real workerd through
// miniflare on a loopback port, the dashboard build as its static assets, HYPERDRIVE pointed
// at DATABASE_URL (a fresh database), and Supabase REST played by the PostgREST stand-in over
// that same database. Prints {"origin"} once listening; stops when stdin closes.
//
// Its own process because miniflare's local Hyperdrive proxy (HyperdriveProxyController,
// miniflare 4.20251217.0) pipes sockets without error listeners: when Postgres ends a
// connection first (it refuses one, or ends a session), a write on the proxied socket raises
// an uncaught error in the process that runs miniflare. Here such an error is logged, named,
// and the process goes on; nothing the Worker answers passes through this handler.
//   BUNDLE_DIR, STANDIN_BIN, DATABASE_URL, CDP_ADMIN_TOKEN
import { Miniflare } from "miniflare";
import { bundleOptions, freePort, need, startStandin, workerBindings } from "./test-support.js";

const KEY = "dashboard-suite-service-key";

process.on("uncaughtException", (error) => {
  console.error(JSON.stringify({ msg: "miniflare's local Hyperdrive proxy raised (ignored)", error: String(error.message ?? error) }));
});

const databaseUrl = need("DATABASE_URL");
const standin = await startStandin(KEY, { databaseUrl });
const schema = await standin.newSchema();
const hyperdrive = new URL(databaseUrl);
// Miniflare's Hyperdrive wants a password in the URL; trust auth ignores it.
hyperdrive.password = "unused";
const port = await freePort();
const mf = new Miniflare({
  ...bundleOptions({ maxRetries: 100 }),
  host: "127.0.0.1",
  port,
  hyperdrives: { HYPERDRIVE: hyperdrive.toString() },
  bindings: workerBindings({
    rest: standin.rest,
    key: KEY,
    schema,
    origin: `http://127.0.0.1:${port}`,
    token: need("CDP_ADMIN_TOKEN"),
    testMode: false,
  }),
});
const url = await mf.ready;
console.log(JSON.stringify({ origin: url.origin }));

const stop = async () => {
  await mf.dispose().catch(() => {});
  standin.stop();
  process.exit(0);
};
process.stdin.on("end", stop).resume();
process.on("SIGTERM", stop);
