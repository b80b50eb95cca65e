//! Runs the browser tests against the real collector: `npm test` builds `cdp` once (after `npm run
//! build`, so the binary embeds the current `dist/cdp.js`), then runs every `test/*.test.mjs` with
//! `CDP_BIN` naming it (see scripts/cdp-test-binary.mjs at the repository root). Arguments, when
//! given, replace the list of files.

import { runBrowserTests } from '../../scripts/cdp-test-binary.mjs';

runBrowserTests({
  label: 'tracker',
  cwd: new URL('..', import.meta.url),
  testDir: new URL('../test/', import.meta.url),
  files: process.argv.slice(2),
});
