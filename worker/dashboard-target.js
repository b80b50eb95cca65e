// The Worker as the server of the dashboard's browser suite (dashboard/test, run with
// CDP_DASHBOARD_TARGET=worker by worker/test.sh): starts dashboard-server.js (the built Worker
// in real workerd through miniflare, over a fresh Postgres database, with Supabase REST played
// by the PostgREST stand-in over that database, since Supabase cannot be reached from here).
// Events go in through the Worker's real /collect, the queue, REST and the fold at the edge;
// every dashboard read comes back out through Hyperdrive. Needs the environment test.sh sets:
//   BUNDLE_DIR   wrangler --dry-run --outdir output of the default environment
//   STANDIN_BIN  cdp-adapters example postgrest_standin
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const SERVER = new URL("./dashboard-server.js", import.meta.url);

// Starts the Worker over database `databaseUrl` with admin token `token`. Returns what the
// dashboard harness drives: `origin`, `token`, `backend` (what /health names), `close()` and
// `tail()` (the server's last log lines).
export async function startWorkerServer({ databaseUrl, token }) {
  const child = spawn(process.execPath, [SERVER.pathname], {
    env: { ...process.env, DATABASE_URL: databaseUrl, CDP_ADMIN_TOKEN: token },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const log = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    log.push(line);
    log.splice(0, Math.max(0, log.length - 200));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    exited.then((code) => reject(new Error(`the Worker server exited (${code}) before listening:\n${log.slice(-30).join("\n")}`)));
  });
  const { origin } = JSON.parse(first);
  return {
    origin,
    token,
    backend: "cloudflare-queue",
    async close() {
      child.stdin.end();
      const late = setTimeout(() => child.kill("SIGKILL"), 15000);
      await exited;
      clearTimeout(late);
    },
    tail: () => log.slice(-30).join("\n"),
  };
}
