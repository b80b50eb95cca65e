//! The real `cdp` binary for the browser suites of `tracker/` and `dashboard/`: built by
//! `cargo build -p cdp-cli --bin cdp` at the repository root (after the package's `npm run
//! build`, so it embeds the current `dist/`), copied aside, and handed to the test files in
//! `CDP_BIN`. A failed build fails the run: nothing is skipped. Plain Node modules, imported by
//! relative path, so neither package depends on the other.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Runs `cargo build -p cdp-cli --bin cdp` at the repository root and returns the path of a private
 * copy of the binary in `intoDir`. `needs`, when given, is a file the binary embeds that must exist
 * first (a URL). Throws when it is missing, when cargo is missing or when the build fails.
 *
 * The copy matters: `target/debug/cdp` is shared, and another build of the workspace (from a
 * checkout without a package's `dist/`, say) may replace it while the suite runs.
 */
export function buildCdp(intoDir, needs) {
  if (needs && !existsSync(needs)) {
    throw new Error(`no ${fileURLToPath(needs)}: run 'npm run build' before building the server`);
  }
  const args = ['build', '-p', 'cdp-cli', '--bin', 'cdp', '--message-format=json-render-diagnostics'];
  console.error(`building the server: cargo ${args.join(' ')} (in ${REPO_ROOT})`);
  const result = spawnSync('cargo', args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error) throw new Error(`cannot run cargo to build the server: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`'cargo build -p cdp-cli --bin cdp' failed (exit ${result.status}); the browser tests need the real server`);
  }
  let executable = null;
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = JSON.parse(line);
    if (message.reason === 'compiler-artifact' && message.target?.name === 'cdp' && message.executable) {
      executable = message.executable;
    }
  }
  if (!executable || !existsSync(executable)) {
    throw new Error(`cargo built cdp-cli but reported no 'cdp' executable (got ${executable})`);
  }
  const copy = path.join(intoDir, 'cdp');
  copyFileSync(executable, copy);
  return copy;
}

let binary = null;

/**
 * The server binary for a test file: `CDP_BIN` when set (it must exist), otherwise one built now
 * into a temp dir named after `label` and removed when the process exits.
 */
export function cdpBinary(label, needs) {
  if (binary) return binary;
  const given = process.env.CDP_BIN;
  if (given) {
    if (!existsSync(given)) throw new Error(`CDP_BIN=${given} does not exist`);
    binary = given;
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), `cdp-${label}-bin-`));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    binary = buildCdp(dir, needs);
  }
  return binary;
}

/**
 * `npm test` of a package: builds the binary once, then runs `node --test` (one file at a time)
 * on `files`, or on every `*.test.mjs` in `testDir` when none are given, from `cwd` with
 * `CDP_BIN` naming the build. Exits with the suite's status.
 */
export function runBrowserTests({ label, cwd, testDir, needs, files }) {
  const binDir = mkdtempSync(path.join(tmpdir(), `cdp-${label}-bin-`));
  process.on('exit', () => rmSync(binDir, { recursive: true, force: true }));
  let bin;
  try {
    bin = buildCdp(binDir, needs);
  } catch (error) {
    console.error(`\n${error.message}`);
    process.exit(1);
  }
  console.error(`server binary: ${bin}`);
  const list = [...files];
  if (!list.length) {
    const rel = path.relative(fileURLToPath(cwd), fileURLToPath(testDir));
    list.push(
      ...readdirSync(testDir)
        .filter((name) => name.endsWith('.test.mjs'))
        .sort()
        .map((name) => path.join(rel, name)),
    );
  }
  const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...list], {
    cwd,
    stdio: 'inherit',
    env: { ...process.env, CDP_BIN: bin },
  });
  process.exit(run.status ?? 1);
}
