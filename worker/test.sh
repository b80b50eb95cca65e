#!/usr/bin/env bash
# The Worker's whole check, from a clean checkout: builds the wasm package (installing the
# wasm32 target and the matching wasm-bindgen-cli when missing), the Rust helpers the tests
# run (the PostgREST stand-in, the Rust reference for the journeys, and `cdp` for the
# bad-input comparison) and the dashboard (the Worker's static assets), bundles the Worker
# with wrangler (the test bundle, and the production bundle as a dry run), then runs the
# miniflare tests in workerd. Postgres is required: unreachable is a failure, never a skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CDP_TEST_DATABASE_URL=${CDP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export WRANGLER_SEND_METRICS=false
step() { printf '\n==> worker: %s\n' "$*"; }
die() { echo "worker/test.sh: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is required (>= 20)"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "node >= 20 is required"
command -v cargo >/dev/null || die "cargo is required"

step "postgres at $CDP_TEST_DATABASE_URL"
if command -v pg_isready >/dev/null; then
  pg_isready -d "$CDP_TEST_DATABASE_URL" -q || die "Postgres is not reachable at $CDP_TEST_DATABASE_URL; the Worker tests need it"
else
  die "pg_isready is missing; install the Postgres client tools"
fi

step "npm packages (miniflare, wrangler, binaryen)"
(cd "$here" && { [ -d node_modules/miniflare ] || npm ci --no-audit --no-fund; })

step "dashboard build (served at /admin/cdp/ as static assets)"
(cd "$root/dashboard" && { [ -d node_modules/vite ] || npm ci --no-audit --no-fund; } && npm run build >/dev/null)

step "wasm package"
"$here/build-wasm.sh"

step "Rust helpers: PostgREST stand-in, journey reference, cdp"
(cd "$root" && cargo build --locked -p cdp-adapters --example postgrest_standin \
  && cargo build --locked -p cdp-wasm --example journey_reference \
  && cargo build --locked -p cdp-cli --bin cdp)
target=$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
export STANDIN_BIN="$target/debug/examples/postgrest_standin"
export REFERENCE_BIN="$target/debug/examples/journey_reference"
export CDP_BIN="$target/debug/cdp"

step "bundles: test (default env) and production (dry run)"
cd "$here"
rm -rf dist
npx wrangler deploy --dry-run --outdir dist/test >/dev/null
npx wrangler deploy --dry-run --env production --outdir dist/production | grep -E 'Total Upload|Durable Object|KV Namespace|Queue|Hyperdrive|Assets'
ls dist/production/*.wasm >/dev/null || die "the production bundle has no wasm module"
export BUNDLE_DIR="$here/dist/test"

step "miniflare tests (workerd)"
node --test --test-concurrency=1 --test-timeout=300000 test/

# The dashboard's browser suite once more, against the Worker instead of `cdp serve`: the
# files that drive a server (the fixture-server and source checks have no server to swap).
step "dashboard browser suite against the Worker (Chromium, workerd, Postgres)"
(cd "$root/dashboard" && CDP_DASHBOARD_TARGET=worker node --test --test-concurrency=1 --test-timeout=300000 \
  test/seeded.test.mjs test/states.test.mjs test/freshness.test.mjs test/visitor.test.mjs test/offline.test.mjs)
