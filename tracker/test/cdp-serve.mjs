//! The real collector for the browser tests: the `cdp` binary from `cdp-api`, run as `cdp serve` on
//! an ephemeral loopback port with a fresh temporary `--data-dir` (so it stores into its embedded
//! SQLite file) and `--allowed-origins` set to the test site's origin. A test can stop the process
//! and start it again on the same port and data dir, which is what an outage looks like to a page.
//!
//! The binary comes from scripts/cdp-test-binary.mjs at the repository root: `npm test` builds it
//! once before the suite and passes its path in `CDP_BIN`; a test file run on its own builds it
//! itself. A failed build fails the run: nothing is skipped.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cdpBinary as sharedBinary } from '../../scripts/cdp-test-binary.mjs';

const DIST = new URL('../dist/cdp.js', import.meta.url);

/** The collector binary: `CDP_BIN` when set, otherwise one built now. */
export function cdpBinary() {
  return sharedBinary('tracker');
}

/** Every server this process started, so that none outlives a crashed test file. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `cdp serve` and waits for `/health`. The returned handle can `stop()` the process (SIGTERM,
 * as an orchestrator does), `start()` it again on the same port and data dir, and `close()` it for
 * good, which also removes the data dir.
 */
export async function startCdpServe({ allowedOrigins }) {
  const bin = cdpBinary();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cdp-tracker-test-'));
  const server = {
    /** The collector's base URL; the tracker posts to `${endpoint}/collect`. */
    endpoint: '',
    port: 0,
    dataDir,
    /** The SQLite file `cdp serve` stores events in. */
    dbPath: path.join(dataDir, 'cdp.sqlite3'),
    /** The last lines the process logged, for failure messages. */
    log: [],
    child: null,
    get running() {
      return this.child != null;
    },
    async start() {
      if (this.child) return;
      // The first start takes any free port; a restart needs the same one, which the kernel may
      // briefly hand to someone else's connection, so a refused bind is retried for a while.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(this, bin, allowedOrigins);
          break;
        } catch (error) {
          if (!this.port || !error.bindFailed || attempt >= 40) throw error;
          await sleep(250);
        }
      }
      await waitForHealth(this);
    },
    async stop() {
      const child = this.child;
      if (!child) return;
      this.child = null;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM');
      let timer;
      const late = new Promise((resolve) => (timer = setTimeout(resolve, 15000, false)));
      const graceful = await Promise.race([exited.then(() => true), late]);
      clearTimeout(timer);
      if (!graceful) {
        child.kill('SIGKILL');
        await exited;
        running.delete(child);
        throw new Error(`cdp serve did not stop within 15 s of SIGTERM; last log lines:\n${tail(this)}`);
      }
      running.delete(child);
    },
    async close() {
      try {
        await this.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  try {
    await server.start();
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return server;
}

/** Spawns the process and resolves once it has logged the address it listens on. */
function launch(server, bin, allowedOrigins) {
  const args = [
    'serve',
    '--listen',
    `127.0.0.1:${server.port}`,
    '--data-dir',
    server.dataDir,
    '--allowed-origins',
    allowedOrigins.join(','),
    '--log-json',
    '--log',
    'info',
  ];
  // Only what the flags say: a CDP_DATABASE_URL or CDP_CONFIG in the caller's environment must not
  // point the test collector at some other store or scoring configuration.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('CDP_') && !key.startsWith('SUPABASE_')),
  );
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      reject(error);
    };
    const timeout = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`cdp serve did not report its address within 30 s; log:\n${tail(server)}`));
    }, 30000);
    const onLine = (line) => {
      server.log.push(line);
      if (server.log.length > 200) server.log.shift();
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      const addr = entry.fields?.message == 'collector listening' && entry.fields.addr;
      if (addr && !settled) {
        settled = true;
        clearTimeout(timeout);
        server.port = Number(addr.split(':').pop());
        server.endpoint = `http://127.0.0.1:${server.port}`;
        server.child = child;
        resolve();
      }
    };
    lines(child.stdout, onLine);
    lines(child.stderr, onLine);
    child.once('error', (error) => fail(new Error(`cannot run ${bin}: ${error.message}`)));
    // 'close' rather than 'exit': by then the last log lines (say, why it could not bind) are in.
    child.once('close', (code, signal) => {
      running.delete(child);
      if (server.child == child) server.child = null;
      const error = new Error(`cdp serve exited (${signal || code}) before listening; log:\n${tail(server)}`);
      error.bindFailed = tail(server).includes('cannot listen');
      fail(error);
    });
  });
}

async function waitForHealth(server) {
  const deadline = Date.now() + 30000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${server.endpoint}/health`);
      const body = await response.text();
      if (response.ok) return JSON.parse(body);
      last = `${response.status} ${body}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(50);
  }
  throw new Error(`cdp serve at ${server.endpoint} never answered /health with 2xx (last: ${last}); log:\n${tail(server)}`);
}

/**
 * Fails unless the running collector serves, at `/cdp.js`, the very file `npm run build` produced:
 * otherwise the pages would run a stale tracker embedded in an old binary.
 */
export async function assertServesCurrentTracker(server) {
  const response = await fetch(`${server.endpoint}/cdp.js`);
  const served = Buffer.from(await response.arrayBuffer());
  const built = readFileSync(DIST);
  if (response.status != 200 || !served.equals(built)) {
    throw new Error(
      `cdp serve at ${server.endpoint} answers /cdp.js with ${response.status} and ${served.length} bytes that ` +
        `differ from dist/cdp.js (${built.length} bytes): rebuild the server after the tracker ` +
        `('npm run build', then 'cargo build -p cdp-api --bin cdp', or just 'npm test')`,
    );
  }
}

function lines(stream, onLine) {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  });
}

function tail(server) {
  return server.log.slice(-30).join('\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
