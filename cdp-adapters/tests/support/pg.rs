//! The real Postgres the suite runs on: `CDP_TEST_DATABASE_URL` (CI sets
//! `postgres://postgres@127.0.0.1:5432/test`). A missing variable or an unreachable server
//! fails the test with instructions; it never skips. Each test gets its own fresh schema,
//! dropped afterwards (even when the test panics), because other people run tests on the same
//! database at the same time.

use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::{Client, NoTls};

/// The env var naming the test database.
pub const DATABASE_URL_VAR: &str = "CDP_TEST_DATABASE_URL";

/// The test database URL, or a panic that says how to provide one.
pub fn database_url() -> String {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{DATABASE_URL_VAR} is not set. The Postgres conformance tests need a real server, \
             e.g. {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/test (what .ci/run sets)"
        ),
    }
}

/// A connection, or a panic naming the URL's host and the error.
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test Postgres at {} ({DATABASE_URL_VAR}): {e}",
                cdp_adapters::store::redact_url(url)
            )
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A schema that exists for one test and is dropped when this guard is.
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    /// Creates `cdp_test_<pid>_<n>_<nanos>`.
    pub async fn create() -> Schema {
        static N: AtomicU32 = AtomicU32::new(0);
        let url = database_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "cdp_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let client = connect(&url).await;
        client
            .batch_execute(&format!("create schema \"{name}\""))
            .await
            .expect("create test schema");
        Schema { url, name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                        let _ = client
                            .batch_execute(&format!("drop schema if exists \"{name}\" cascade"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
