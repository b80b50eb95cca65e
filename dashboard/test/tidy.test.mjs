//! The house rules for the dashboard's source, checked on every test run: each file says what it
//! decides in an opening `//!` line; only `src/api.ts` talks to the network; components neither
//! request nor hold the loading hooks (they take data as props); and nothing makes numbers up.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sources(dir = SRC) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.tsx?$/.test(entry.name) ? [{ path: relative(SRC, path), code: readFileSync(path, 'utf8') }] : [];
  });
}

/** Comments removed, so rules apply to code and prose may name what it avoids. */
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('tidy', () => {
  const files = sources();

  test('every source file opens with a //! line saying what it decides', () => {
    const missing = files.filter((f) => !f.code.startsWith('//! ')).map((f) => f.path);
    assert.deepEqual(missing, []);
  });

  test('only src/api.ts talks to the network', () => {
    const network = /\bfetch\s*\(|XMLHttpRequest|EventSource|WebSocket|sendBeacon/;
    const offenders = files.filter((f) => f.path !== 'api.ts' && network.test(code(f.code))).map((f) => f.path);
    assert.deepEqual(offenders, []);
  });

  test('components take data as props: no request functions, no loading hooks', () => {
    const requesting = /import\s*\{[^}]*\b(metrics|events|searches|profile|health|person|identity)\b[^}]*\}\s*from\s*'\.\.\/api'|import\s+\*\s+as\s+\w+\s+from\s+'\.\.\/api'/;
    const hooks = /\buse(Dashboard|Visitor|Person|Identity|Keyed)\b/;
    const offenders = files
      .filter((f) => f.path.startsWith('components/'))
      .filter((f) => requesting.test(f.code) || hooks.test(code(f.code)))
      .map((f) => f.path);
    assert.deepEqual(offenders, []);
  });

  test('no module makes numbers up', () => {
    const invented = /Math\.random|crypto\.getRandomValues|\bmock|\bfaker\b|generate\w*(Data|Metrics|Events)/i;
    const offenders = files.filter((f) => invented.test(code(f.code))).map((f) => f.path);
    assert.deepEqual(offenders, []);
  });
});
