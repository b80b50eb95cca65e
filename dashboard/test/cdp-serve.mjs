//! The real server for the browser tests: the `cdp` binary from `cdp-api`, run as `cdp serve` on an
//! ephemeral loopback port with a fresh temporary `--data-dir` and an `--admin-token`, so the
//! dashboard is the one the binary embeds and every figure comes from its store. Also what the
//! tests do to that server: seed it through the real `/collect` (`cdp demo`), point it at a fresh
//! Postgres database through a TCP proxy the test can cut (the store going down), and check it
//! serves the current `dist/`.
//!
//! The binary comes from scripts/cdp-test-binary.mjs at the repository root, built after `npm run
//! build` so it embeds the current `dist/`: `npm test` builds it once (test/run.mjs) and passes a
//! private copy in `CDP_BIN`; a test file run on its own builds it itself. A failed build fails
//! the run: nothing is skipped.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cdpBinary as sharedBinary } from '../../scripts/cdp-test-binary.mjs';

const DIST_INDEX = new URL('../dist/index.html', import.meta.url);

/** The Postgres the offline tests run against; a fresh database is created in it per server. */
export const POSTGRES_URL = process.env.CDP_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** The admin token every test server is started with (at least 16 characters). */
export const ADMIN_TOKEN = `dashboard-test-${randomBytes(12).toString('hex')}`;

/** The server binary: `CDP_BIN` when set, otherwise one built now (after `npm run build`). */
export function cdpBinary() {
  return sharedBinary('dashboard', DIST_INDEX);
}

/** Every server this process started, so that none outlives a crashed test file. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `cdp serve` with the admin token on an ephemeral loopback port and waits for `/health`.
 * `databaseUrl` points it at Postgres instead of the embedded SQLite file. `close()` stops it and
 * removes its data dir.
 */
export async function startCdpServe({ databaseUrl = null } = {}) {
  const bin = cdpBinary();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cdp-dashboard-test-'));
  const server = {
    origin: '',
    token: ADMIN_TOKEN,
    /** What `/health` names as the backend. */
    backend: databaseUrl ? 'postgres' : 'sqlite',
    dataDir,
    log: [],
    child: null,
    /** GET `path` with the admin token: `{ status, body }`, the body parsed as JSON. */
    api: (p) => getJson(server.origin, p, ADMIN_TOKEN),
    async close() {
      try {
        await stop(this);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    tail: () => server.log.slice(-30).join('\n'),
  };
  try {
    await launch(server, bin, databaseUrl);
    await waitForHealth(server);
  } catch (error) {
    await stop(server).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return server;
}

async function stop(server) {
  const child = server.child;
  if (!child) return;
  server.child = null;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM');
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(resolve, 15000, false)));
  const graceful = await Promise.race([exited.then(() => true), late]);
  clearTimeout(timer);
  running.delete(child);
  if (!graceful) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`cdp serve did not stop within 15 s of SIGTERM; last log lines:\n${server.tail()}`);
  }
}

/** Spawns the process and resolves once it has logged the address it listens on. */
function launch(server, bin, databaseUrl) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', server.dataDir, '--admin-token', ADMIN_TOKEN, '--log-json', '--log', 'info'];
  if (databaseUrl) args.push('--database-url', databaseUrl);
  // Only what the flags say: CDP_* or SUPABASE_* in the caller's environment must not point the
  // test server at some other store or configuration.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CDP_') && !key.startsWith('SUPABASE_')));
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  server.child = child;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      reject(error);
    };
    const timeout = setTimeout(() => fail(new Error(`cdp serve did not report its address within 30 s; log:\n${server.tail()}`)), 30000);
    const onLine = (line) => {
      server.log.push(line);
      if (server.log.length > 200) server.log.shift();
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      const addr = entry.fields?.message === 'collector listening' && entry.fields.addr;
      if (addr && !settled) {
        settled = true;
        clearTimeout(timeout);
        server.origin = `http://127.0.0.1:${Number(addr.split(':').pop())}`;
        resolve();
      }
    };
    lines(child.stdout, onLine);
    lines(child.stderr, onLine);
    child.once('error', (error) => fail(new Error(`cannot run ${bin}: ${error.message}`)));
    child.once('close', (code, signal) => {
      running.delete(child);
      if (server.child === child) server.child = null;
      fail(new Error(`cdp serve exited (${signal || code}) before listening; log:\n${server.tail()}`));
    });
  });
}

async function waitForHealth(server) {
  const deadline = Date.now() + 30000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${server.origin}/health`);
      const body = await response.text();
      if (response.ok) return JSON.parse(body);
      last = `${response.status} ${body}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(50);
  }
  throw new Error(`cdp serve at ${server.origin} never answered /health with 2xx (last: ${last}); log:\n${server.tail()}`);
}

/**
 * Fails unless the server serves the very assets `npm run build` produced (each script and
 * stylesheet `dist/index.html` refers to, byte for byte, under `/admin/cdp/`): otherwise the tests
 * would drive a stale dashboard embedded in an old binary.
 */
export async function assertServesCurrentDashboard(server) {
  const index = readFileSync(DIST_INDEX, 'utf8');
  const assets = [...index.matchAll(/(?:src|href)="\.?\/?(assets\/[^"]+)"/g)].map((m) => m[1]);
  if (!assets.length) throw new Error('dist/index.html refers to no assets/ files');
  for (const asset of assets) {
    const response = await fetch(`${server.origin}/admin/cdp/${asset}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    const served = Buffer.from(await response.arrayBuffer());
    const built = readFileSync(new URL(`../dist/${asset}`, import.meta.url));
    if (response.status !== 200 || !served.equals(built)) {
      throw new Error(
        `cdp serve at ${server.origin} answers /admin/cdp/${asset} with ${response.status} and ${served.length} bytes that ` +
          `differ from dist/${asset} (${built.length} bytes): rebuild the server after the dashboard ` +
          `('npm run build', then 'cargo build -p cdp-api --bin cdp', or just 'npm test')`,
      );
    }
  }
}

/**
 * Seeds the server through its real `/collect` with `cdp demo` (a fixed seed, so the traffic is the
 * same every run, relative to now), then waits until the stored events are all counted by the API
 * and the figures have stopped moving. Returns the number of events accepted.
 */
export async function seed(server, { visitors = 150, days = 7, seed: demoSeed = 42 } = {}) {
  const args = ['demo', '--visitors', String(visitors), '--days', String(days), '--seed', String(demoSeed), '--url', server.origin];
  // Asynchronously: the Postgres proxy runs in this process and must keep forwarding meanwhile.
  const result = await run(cdpBinary(), args);
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.status !== 0) throw new Error(`cdp ${args.join(' ')} failed (exit ${result.status}):\n${output}`);
  const match = /(\d+) events: (\d+) accepted, (\d+) duplicate, (\d+) rejected/.exec(output);
  if (!match) throw new Error(`cdp demo did not report what it sent:\n${output}`);
  const accepted = Number(match[2]);
  if (accepted === 0 || Number(match[4]) !== 0) throw new Error(`cdp demo: ${match[0]}`);

  // The writer commits behind the answer: wait until the widest window counts every event, and
  // two reads in a row agree on everything the page shows.
  const deadline = Date.now() + 30000;
  let previous = null;
  while (Date.now() < deadline) {
    const { status, body } = await server.api('/api/cdp/metrics?range=30d');
    if (status === 200 && body.kpis?.events.value === accepted) {
      const figures = JSON.stringify(figuresOf(body));
      if (figures === previous) return accepted;
      previous = figures;
    }
    await sleep(250);
  }
  throw new Error(`after seeding, /api/cdp/metrics?range=30d never settled at ${accepted} events; log:\n${server.tail()}`);
}

/** An API answer without the fields that name the moment it was made. */
export function figuresOf(body) {
  const { generated_at: _generated, window: _window, ...figures } = body;
  return figures;
}

/**
 * A fresh, empty Postgres database for one server, reached through a TCP proxy the test can cut.
 * `cdp serve` has no option for a schema, so isolation is a database of its own, dropped (with any
 * connections still open to it) by `drop()`. Throws when Postgres cannot be reached: the offline
 * tests need it and are never skipped.
 */
export async function freshPostgres() {
  const admin = new URL(POSTGRES_URL);
  const name = `cdp_dashboard_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  psql(`create database ${name}`);
  const proxy = await startTcpProxy(admin.hostname, Number(admin.port || 5432));
  const url = new URL(POSTGRES_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  url.pathname = `/${name}`;
  return {
    name,
    proxy,
    /** The database URL `cdp serve` gets: through the proxy. */
    url: url.toString(),
    /** The database URL without the proxy (the Worker's Hyperdrive and REST stand-in). */
    directUrl: Object.assign(new URL(POSTGRES_URL), { pathname: `/${name}` }).toString(),
    /**
     * Makes the database refuse new connections (SQLSTATE 55000, as a paused or restricted
     * database does) and ends the server's open ones, so its next query must connect again.
     */
    refuseConnections() {
      psql(`alter database ${name} allow_connections false`);
      psql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`);
    },
    /** Lets the database take connections again. */
    allowConnections() {
      psql(`alter database ${name} allow_connections true`);
    },
    async drop() {
      await proxy.close();
      psql(`alter database ${name} allow_connections true`);
      psql(`drop database if exists ${name} with (force)`);
    },
  };
}

function psql(sql) {
  const result = spawnSync('psql', [POSTGRES_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' });
  if (result.error) throw new Error(`cannot run psql: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`psql ${POSTGRES_URL} -c '${sql}' failed (exit ${result.status}): ${result.stderr}`);
  return result.stdout;
}

/**
 * A TCP pass-through on an ephemeral loopback port. `cut()` drops every open connection and
 * refuses new ones (closed at once), which is what a store that went away looks like to its
 * client; `restore()` lets connections through again.
 */
export async function startTcpProxy(host, port) {
  const sockets = new Set();
  let up = true;
  const listener = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(port, host);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    port: listener.address().port,
    get up() {
      return up;
    },
    cut() {
      up = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      up = true;
    },
    close() {
      this.cut();
      return new Promise((resolve) => listener.close(resolve));
    },
  };
}

/** Runs a command without blocking the event loop: `{ status, stdout, stderr }`. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export async function getJson(origin, p, token) {
  const response = await fetch(origin + p, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`${p} answered ${response.status} with non-JSON: ${text.slice(0, 200)}`);
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

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
