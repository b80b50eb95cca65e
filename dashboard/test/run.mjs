//! Runs the browser tests against the real server: builds `cdp` once (`cargo build -p cdp-api --bin
//! cdp` at the repository root, after `npm run build`, so the binary embeds the current `dist/`),
//! copies it aside, then runs `node --test` on the test files with `CDP_BIN` naming the copy. A
//! failed build fails the run. Arguments, when given, replace the list of files.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCdp } from './cdp-serve.mjs';

const binDir = mkdtempSync(path.join(tmpdir(), 'cdp-dashboard-bin-'));
process.on('exit', () => rmSync(binDir, { recursive: true, force: true }));

let bin;
try {
  bin = buildCdp(binDir);
} catch (error) {
  console.error(`\n${error.message}`);
  process.exit(1);
}
console.error(`server binary: ${bin}`);

const files = process.argv.slice(2);
if (!files.length) {
  const dir = new URL('./', import.meta.url);
  files.push(...readdirSync(dir).filter((name) => name.endsWith('.test.mjs')).sort().map((name) => `test/${name}`));
}
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  cwd: new URL('..', import.meta.url),
  stdio: 'inherit',
  env: { ...process.env, CDP_BIN: bin },
});
process.exit(run.status ?? 1);
