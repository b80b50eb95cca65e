//! Builds `dist/cdp.js`: one minified IIFE. The file is only rewritten when its content changes,
//! because `cdp-api` embeds it and Cargo rebuilds the server whenever the file's mtime moves. A test
//! run that rebuilds the tracker does not then trigger a full server rebuild for identical bytes.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const OUT = new URL('../dist/cdp.js', import.meta.url);

const result = await build({
  entryPoints: [new URL('../src/index.ts', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2019',
  legalComments: 'none',
  write: false,
  outfile: OUT.pathname,
  logLevel: 'warning',
});
const bytes = Buffer.from(result.outputFiles[0].contents);

let current = null;
try {
  current = readFileSync(OUT);
} catch {
  // Not built yet.
}
if (current && current.equals(bytes)) {
  console.log(`dist/cdp.js unchanged (${bytes.length} bytes)`);
} else {
  mkdirSync(new URL('../dist/', import.meta.url), { recursive: true });
  writeFileSync(OUT, bytes);
  console.log(`dist/cdp.js written (${bytes.length} bytes)`);
}
