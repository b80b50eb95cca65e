//! Embeds the browser tracker (`tracker/dist/cdp.js`) when it has been built, and an empty
//! placeholder otherwise, so the server builds before or without the tracker.

use std::path::Path;

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracker/dist/cdp.js");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("cdp.js");
    let script = std::fs::read(&source).unwrap_or_default();
    if let Err(e) = std::fs::write(&out, script) {
        panic!("cannot write {}: {e}", out.display());
    }
}
