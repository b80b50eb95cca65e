#!/usr/bin/env bash
# Builds cdp-wasm for the Worker into worker/pkg: wasm32 release build tuned for size, the
# wasm-bindgen JS glue (`--target web`, initialised with the module Cloudflare imports), then
# wasm-opt -Oz. Installs the wasm32 target and the exact wasm-bindgen-cli version of
# Cargo.lock when they are missing or differ.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$want" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found: ${have:-none}); this takes several minutes"
  cargo install wasm-bindgen-cli --version "=$want"
fi

# Size over speed: the Worker's CPU time per event is measured in the tests and stays small.
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=0 \
CARGO_PROFILE_RELEASE_PANIC=abort \
  cargo build -p cdp-wasm --lib --release --target wasm32-unknown-unknown --locked

target=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
rm -rf "$here/pkg"
wasm-bindgen --target web --out-dir "$here/pkg" --no-typescript \
  "$target/wasm32-unknown-unknown/release/cdp_wasm.wasm"

opt="$here/node_modules/.bin/wasm-opt"
[ -x "$opt" ] || { echo "wasm-opt missing: run npm ci in worker/" >&2; exit 1; }
"$opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$here/pkg/cdp_wasm_bg.wasm" -o "$here/pkg/cdp_wasm_bg.wasm"

raw=$(wc -c < "$here/pkg/cdp_wasm_bg.wasm")
gz=$(gzip -9 -c "$here/pkg/cdp_wasm_bg.wasm" | wc -c)
echo "cdp_wasm_bg.wasm: $raw bytes, $gz bytes gzipped"
[ "$gz" -lt 1048576 ] || { echo "gzipped wasm is over the 1 MB budget" >&2; exit 1; }
