//! Assembles the collector: opens the store, starts the writers, binds the listener and routes
//! `/collect`, `/health` and `/cdp.js` behind CORS, tracing and a panic guard, plus the
//! dashboard (`/admin/cdp/`), its API (`/api/cdp/*`) and the login page behind the admin guard
//! ([`crate::access`]). On Postgres it also folds the rollups behind the event stream
//! ([`crate::rollups`]). Shutdown stops accepting, finishes in-flight requests, then lets the
//! writers drain and save profiles, and folds what is pending.

use crate::access::{self, Access};
use crate::clock::Clock;
use crate::reply::{AppError, Refusal};
use crate::rollups::Folder;
use crate::settings::{Origins, Settings, StoreSettings};
use crate::suppression::Suppression;
use crate::writer::{Writers, WritersShutdown};
use crate::{api, collect, dashboard, erasure, health, people, tracker};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cdp_adapters::{Store, StoreError};
use cdp_core::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Scoring configuration.
    pub cfg: Arc<Config>,
    /// The store, for health checks (writes go through the writers).
    pub store: Arc<Store>,
    /// Group-commit writers.
    pub writers: Writers,
    /// Browser origins allowed to post.
    pub origins: Origins,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
    /// How long a `/collect` body may take to arrive.
    pub body_timeout: Duration,
    /// Where "now" comes from for the dashboard API and sessions.
    pub clock: Clock,
    /// Who may use the admin routes.
    pub access: Access,
    /// The tombstones of erased people and the count of their suppressed events (`None`:
    /// no `--tombstone-key`, erasing is refused).
    pub suppression: Option<Arc<Suppression>>,
    /// Held by the one erasure that may run at a time.
    pub erasing: Arc<tokio::sync::Mutex<()>>,
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened or migrated.
    #[error("cannot open the store ({target}): {source}")]
    Store {
        /// Where, without secrets.
        target: String,
        /// What the store said.
        source: StoreError,
    },
}

/// A running collector.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops gracefully: no new connections, in-flight requests finish, writers drain and
    /// save dirty profiles.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task ended abnormally");
        }
    }

    /// Waits until the server stops by itself (it only does on a fatal error).
    pub async fn wait(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task ended abnormally");
        }
    }

    /// Splits into the stop trigger and the task, for callers that wait on a signal.
    pub fn into_parts(self) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
        (self.addr, self.stop, self.task)
    }
}

/// Opens the store and applies pending migrations (idempotent; on Supabase it checks that the
/// tables exist).
pub async fn open_store(s: &StoreSettings) -> Result<Store, StartError> {
    let wrap = |source| StartError::Store {
        target: s.target.describe(),
        source,
    };
    let store = Store::open(&s.target).await.map_err(wrap)?;
    let applied = store.migrate().await.map_err(wrap)?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "migrations applied");
    }
    Ok(store)
}

/// The tombstones of erased people, when a tombstone key is set. A store that cannot hold
/// them (Supabase REST) erases nothing and suppresses nothing, and says so.
async fn load_tombstones(
    store: &Store,
    cfg: &Config,
    settings: &Settings,
) -> Result<Option<Arc<Suppression>>, StartError> {
    let Some(key) = settings.tombstone_key.clone() else {
        tracing::info!(
            "no --tombstone-key: erasing a person (DELETE /api/cdp/people/{{key}}) is refused"
        );
        return Ok(None);
    };
    match Suppression::load(store, cfg.brand_id(), key).await {
        Ok(s) => {
            tracing::info!(
                tombstones = s.tombstones(),
                "tombstones of erased people loaded"
            );
            Ok(Some(Arc::new(s)))
        }
        Err(cdp_adapters::EraseError::Unsupported { backend }) => {
            tracing::warn!(
                backend,
                "this store cannot erase a person; --tombstone-key is unused"
            );
            Ok(None)
        }
        Err(cdp_adapters::EraseError::Store(source)) => Err(StartError::Store {
            target: settings.store.target.describe(),
            source,
        }),
    }
}

/// Opens the store, starts the writers and serves until stopped, on the system clock.
pub async fn start(settings: &Settings) -> Result<Running, StartError> {
    start_with_clock(settings, Clock::System).await
}

/// [`start`] with the dashboard API's clock injected (tests pass a fixed instant).
pub async fn start_with_clock(settings: &Settings, clock: Clock) -> Result<Running, StartError> {
    let store = Arc::new(open_store(&settings.store).await?);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    let cfg = Arc::new(settings.store.config.clone());
    let settings_cfg = cfg.clone();
    let suppression = load_tombstones(&store, &cfg, settings).await?;
    let (writers, writers_stop) = Writers::spawn_with(
        store.clone(),
        cfg.clone(),
        settings.writer,
        suppression.clone(),
    );
    let store_for_folding = store.clone();
    let state = AppState {
        cfg,
        store,
        writers,
        origins: settings.allowed_origins.clone(),
        max_body_bytes: settings.max_body_bytes,
        body_timeout: settings.body_timeout,
        clock,
        access: Access::new(settings.admin_token.as_deref()),
        suppression,
        erasing: Arc::default(),
    };
    match access::startup_notice(&state.access, addr) {
        (true, notice) => tracing::warn!(%addr, "{notice}"),
        (false, notice) => tracing::info!(%addr, "{notice}"),
    }
    if !dashboard::is_built() {
        tracing::warn!(
            "the dashboard is not built into this binary: /admin/cdp/ answers 404; run \
             `npm ci && npm run build` in dashboard/ and rebuild (scripts/run does both)"
        );
    }
    let app = router(state);
    let (stop, stop_rx) = oneshot::channel::<()>();
    tracing::info!(
        %addr,
        store = %settings.store.target.describe(),
        shards = settings.writer.shards,
        allowed_origins = ?settings.allowed_origins,
        "collector listening"
    );
    let stamper = people::spawn_stamper(store_for_folding.clone(), settings_cfg);
    let folder = Folder::spawn(store_for_folding);
    let task = tokio::spawn(serve(listener, app, stop_rx, writers_stop, folder, stamper));
    Ok(Running { addr, stop, task })
}

async fn serve(
    listener: TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
    writers: WritersShutdown,
    folder: Option<Folder>,
    stamper: JoinHandle<()>,
) {
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = stop.await;
    })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "server stopped with an error");
    }
    stamper.abort();
    writers.shutdown().await;
    if let Some(folder) = folder {
        folder.shutdown().await;
    }
    tracing::info!("collector stopped");
}

/// The routes with their layers. Serve it with connect info (the admin guard reads the peer
/// address); without it, a server with no admin token refuses every admin request.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.origins);
    let admin = Router::new()
        .route("/api/cdp/metrics", get(api::metrics))
        .route("/api/cdp/events", get(api::events))
        .route("/api/cdp/searches", get(api::searches))
        .route("/api/cdp/profiles/{anonymous_id}", get(api::profile))
        .route("/api/cdp/openapi.json", get(api::openapi))
        .route("/api/cdp/identity", get(people::figures))
        .route("/api/cdp/people/merge", post(people::merge))
        .route("/api/cdp/people/split", post(people::split))
        .route(
            "/api/cdp/people/{key}",
            get(people::person).delete(erasure::erase),
        )
        .route("/api/cdp/people/{key}/export", get(erasure::export))
        .route("/admin/cdp/", get(dashboard::index))
        .route("/admin/cdp/{*path}", get(dashboard::file))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ));
    Router::new()
        .route("/collect", post(collect::collect))
        .route("/health", get(health::health))
        .route("/cdp.js", get(tracker::script))
        .merge(admin)
        .route("/admin", get(dashboard::to_dashboard))
        .route("/admin/", get(dashboard::to_dashboard))
        .route("/admin/cdp", get(dashboard::to_dashboard))
        .route(
            access::LOGIN_PATH,
            get(access::login_page).post(access::login),
        )
        .route("/admin/logout", post(access::logout))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(cors)
        .layer(CatchPanicLayer::custom(|_| {
            AppError::from(Refusal::Internal).into_response()
        }))
        .layer(TraceLayer::new_for_http())
}

fn cors_layer(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(24 * 3600))
}

async fn not_found() -> Response {
    AppError::from(Refusal::NotFound("route".into())).into_response()
}

async fn method_not_allowed() -> Response {
    AppError::from(Refusal::MethodNotAllowed).into_response()
}
