//! What the HTTP, dashboard and writer test binaries share: the backends every test runs on,
//! the Postgres they need (never skipped), a TCP proxy that can take Postgres away, and a
//! stand-in for a Postgres that refuses every connection with a given SQLSTATE.

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_macros, unused_imports)]

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

/// A connection to the Postgres at `url`, driven on the current runtime; panics with
/// [`PG_HINT`] when it cannot connect.
pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{PG_HINT}: {e}"));
    tokio::spawn(conn);
    client
}

/// `cdp serve`'s settings as its flags give them: an ephemeral loopback port, the data in
/// `dir`, then `extra`.
pub fn serve_settings(dir: &std::path::Path, extra: &[&str]) -> cdp_api::settings::Settings {
    use cdp_api::settings::{Cli, Command};
    use clap::Parser;
    let data_dir = dir.display().to_string();
    let mut argv = vec![
        "cdp",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
    ];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Serve(args)) => args.validate().unwrap_or_else(|e| panic!("{e}")),
        other => panic!("not serve: {other:?}"),
    }
}

/// A TCP proxy to Postgres that the test can cut, or point at another server, to take the
/// store away under a running server.
pub struct Proxy {
    /// Where the proxy listens.
    pub addr: std::net::SocketAddr,
    upstream: Arc<std::sync::Mutex<String>>,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy in front of the test Postgres, and the database URL that goes through it.
    pub async fn before_test_postgres() -> (Proxy, String) {
        let url = pg_url();
        let (proxy, via) = Proxy::before(&url).await;
        (proxy, via)
    }

    /// A proxy in front of the server of `url`, and the same URL through the proxy.
    pub async fn before(url: &str) -> (Proxy, String) {
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
        let upstream = Arc::new(std::sync::Mutex::new(upstream));
        let (c, to) = (conns.clone(), upstream.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = to.lock().map(|u| u.clone()).unwrap_or_default();
                c.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            upstream,
            accept,
            conns,
        }
    }

    /// Sends new connections to `upstream` and closes the open ones.
    pub async fn point_at(&self, upstream: String) {
        if let Ok(mut u) = self.upstream.lock() {
            *u = upstream;
        }
        for c in self.conns.lock().await.drain(..) {
            c.abort();
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

/// A stand-in for a Postgres server that cannot take connections: it reads each client's
/// startup packet and answers with a FATAL `ErrorResponse` carrying `sqlstate`, as Postgres
/// does when it is shutting down (57P03) or a password is wrong (28P01), then closes. Used for
/// the failures the test cluster cannot be made to produce (it trusts every local login, and
/// shutting it down would stop every other test); the message layout is the protocol's own
/// (frontend/backend protocol, "ErrorResponse": a byte `E`, an int32 length, then fields of a
/// type byte and a C string, ended by a zero byte).
pub struct RefusingPostgres {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl RefusingPostgres {
    /// Answers every connection with `FATAL <sqlstate>: <message>`.
    pub async fn start(sqlstate: &'static str, message: &'static str) -> RefusingPostgres {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // The startup packet: an int32 length (itself included), then the rest. An
                    // SSLRequest (length 8) gets `N` (no TLS) and the real startup follows.
                    loop {
                        let mut len = [0u8; 4];
                        if conn.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let len = u32::from_be_bytes(len) as usize;
                        let mut rest = vec![0u8; len.saturating_sub(4)];
                        if conn.read_exact(&mut rest).await.is_err() {
                            return;
                        }
                        if len == 8 && rest[..] == [0x04, 0xd2, 0x16, 0x2f] {
                            let _ = conn.write_all(b"N").await;
                            continue;
                        }
                        break;
                    }
                    let mut fields = Vec::new();
                    for (kind, text) in [
                        (b'S', "FATAL"),
                        (b'V', "FATAL"),
                        (b'C', sqlstate),
                        (b'M', message),
                    ] {
                        fields.push(kind);
                        fields.extend_from_slice(text.as_bytes());
                        fields.push(0);
                    }
                    fields.push(0);
                    let mut out = vec![b'E'];
                    out.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
                    out.extend_from_slice(&fields);
                    let _ = conn.write_all(&out).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        RefusingPostgres { addr, task }
    }
}

impl Drop for RefusingPostgres {
    fn drop(&mut self) {
        self.task.abort();
    }
}
