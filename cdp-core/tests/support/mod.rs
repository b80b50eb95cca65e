//! What the core's integration tests share: the fixture journeys.

use std::path::PathBuf;

/// Every fixture journey (`fixtures/journeys/*.ndjson`) as (name, text), by name.
pub fn journeys() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/journeys");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/journeys exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("readable fixture"))
        })
        .collect()
}
