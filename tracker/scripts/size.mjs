//! The size budget: `dist/cdp.js` must stay within 2.5 KB gzipped, because every visitor downloads it
//! on every page. Prints the figure and fails the build when it is over.

import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 2560;
const file = new URL('../dist/cdp.js', import.meta.url);
const raw = readFileSync(file);
const gzipped = gzipSync(raw, { level: 9 }).length;

console.log(`dist/cdp.js: ${raw.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET_BYTES})`);
if (gzipped > BUDGET_BYTES) {
  console.error(`dist/cdp.js is ${gzipped - BUDGET_BYTES} bytes over the gzip budget`);
  process.exit(1);
}
