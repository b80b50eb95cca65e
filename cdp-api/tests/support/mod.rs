//! What the HTTP, dashboard and writer test binaries share: the backends every test runs on,
//! the Postgres they need (never skipped), and a TCP proxy that can take Postgres away.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// The stores every collector and dashboard test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// The embedded default, in a temporary directory.
    Sqlite,
    /// The Postgres at `CDP_TEST_DATABASE_URL`, in a schema of the test's own.
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed test body, which takes the
/// [`Backend`]; the calling file must have `Backend` in scope.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}
pub(crate) use on_every_backend;

/// Why a Postgres test failed to start.
pub const PG_HINT: &str = "CDP_TEST_DATABASE_URL must point at a reachable Postgres, such as \
                           postgres://postgres@127.0.0.1:5432/test (the Postgres tests never skip)";

/// The test database URL; panics with [`PG_HINT`] when it is not set.
pub fn pg_url() -> String {
    match std::env::var("CDP_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!("{PG_HINT}"),
    }
}

/// A TCP proxy to Postgres that the test can cut, to take the store down under a running server.
pub struct Proxy {
    /// Where the proxy listens.
    pub addr: std::net::SocketAddr,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy in front of the test Postgres, and the database URL that goes through it.
    pub async fn before_test_postgres() -> (Proxy, String) {
        let url = pg_url();
        let cfg: tokio_postgres::Config = url.parse().unwrap_or_else(|e| panic!("{e}"));
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let proxy = Proxy::start(format!("{host}:{port}")).await;
        let user = cfg.get_user().unwrap_or("postgres");
        let password = cfg
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let db = cfg.get_dbname().unwrap_or("postgres");
        let via = format!("postgres://{user}{password}@{}/{db}", proxy.addr);
        (proxy, via)
    }

    /// Listens on an ephemeral loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let c = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                c.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            accept,
            conns,
        }
    }

    /// Closes every connection and stops listening: the database is now unreachable.
    pub async fn cut(&self) {
        self.accept.abort();
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }
}
