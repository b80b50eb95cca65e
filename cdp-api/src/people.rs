//! `/api/cdp/people/*`: one person across browsers and identifiers, and the admin's merges
//! and splits. Each read resolves the identity log with the core (`cdp_core::identity`) and
//! folds the person's stored events; a merge or split is one more edge in the log, never a
//! rewrite of stored data. Admin changes are logged with the edge's id only, never an
//! identifier's value.

use crate::api::ask;
use crate::reply::{AppError, Refusal};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::Json;
use cdp_adapters::{EraseStore, IdentityStore, ProfileStore};
use cdp_answers::people::{self, EdgeBody, IdentityBody, PersonBody};
use cdp_core::identity::{self, Edge, EdgeKind, Origin, Partition};
use cdp_core::intake::Problem;
use serde::Serialize;
use serde_json::Value;

/// How often `cdp serve` stamps `cdp_profiles.person_id` with the partition (links made by
/// events show there within this; admin merges, splits and erasures stamp at once).
pub const STAMP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Stamps the profiles' `person_id` with the brand's partition now; logs a failure (the next
/// round tries again). Returns how many rows changed (`None`: the store does not keep it).
pub async fn stamp(store: &cdp_adapters::Store, cfg: &cdp_core::Config) -> Option<u64> {
    match store.identity_edges(cfg.brand_id()).await {
        Ok(edges) => {
            let p = identity::resolve(&edges, cfg.identity_rules());
            stamp_partition(store, cfg.brand_id(), &p).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not stamp the profiles' person ids; trying again later");
            None
        }
    }
}

/// [`stamp`] with a partition the caller has just resolved.
async fn stamp_partition(
    store: &cdp_adapters::Store,
    brand: &cdp_core::BrandId,
    p: &Partition,
) -> Option<u64> {
    match store
        .stamp_people(brand, &identity::person_of_browsers(p))
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not stamp the profiles' person ids; trying again later");
            None
        }
    }
}

/// Stamps every [`STAMP_EVERY`] until aborted (stamping is idempotent, so stopping midway
/// loses nothing).
pub fn spawn_stamper(
    store: std::sync::Arc<cdp_adapters::Store>,
    cfg: std::sync::Arc<cdp_core::Config>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STAMP_EVERY);
        let mut kept = false;
        loop {
            every.tick().await;
            match (stamp(&store, &cfg).await, store.backend()) {
                (Some(n), _) => {
                    kept = true;
                    if n > 0 {
                        tracing::debug!(profiles = n, "person ids stamped");
                    }
                }
                (None, "supabase") if !kept => {
                    tracing::info!(
                        "profiles' person ids are not stamped over Supabase REST; a cdp serve \
                         on the same database over postgres:// stamps them"
                    );
                    return;
                }
                (None, _) => {}
            }
        }
    })
}

/// The brand's log and its partition.
pub async fn partition(app: &AppState) -> Result<(Vec<Edge>, Partition), AppError> {
    let edges = ask(app.store.identity_edges(app.cfg.brand_id())).await?;
    let p = identity::resolve(&edges, app.cfg.identity_rules());
    Ok((edges, p))
}

/// `GET /api/cdp/people/{key}`: `key` is a person id, an email, a customer id or an
/// anonymous id.
pub async fn person(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<PersonBody>, AppError> {
    let (edges, p) = partition(&app).await?;
    let rules = app.cfg.identity_rules();
    let Some(found) = identity::find(&p, &key, rules) else {
        return Err(AppError::BadParameter(Problem::new(
            "key",
            "must be a person id, an email, a customer id or an anonymous id",
        )));
    };
    let since: Vec<_> = people::browsers_of(&found)
        .into_iter()
        .map(|b| (b, None))
        .collect();
    let brand = app.cfg.brand_id();
    let rows = ask(app.store.visitor_events_many(brand, &since)).await?;
    let rows: Vec<&cdp_core::EventRow> = rows.values().flatten().collect();
    match people::person_body(&app.cfg, &p, &edges, &found, &rows, app.clock.now()) {
        Ok(Some(body)) => Ok(Json(body)),
        Ok(None) => Err(AppError::ProfileNotFound),
        Err(_) => Err(Refusal::Internal.into()),
    }
}

/// The answer to a merge or split.
#[derive(Debug, Serialize)]
pub struct ChangeBody {
    /// `ok`.
    pub status: &'static str,
    /// The edge added to the log.
    pub edge: EdgeBody,
    /// The person id each side belongs to now (`null`: a browser or identifier alone).
    pub a_person: Option<String>,
    /// The other side's.
    pub b_person: Option<String>,
}

/// `POST /api/cdp/people/merge`: links two identifiers (an admin link, applied after every
/// earlier link; refused, and kept as refused, when a guard forbids it).
pub async fn merge(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ChangeBody>, AppError> {
    change(app, &body, EdgeKind::Link).await
}

/// `POST /api/cdp/people/split`: an exclusion between two identifiers; they are never one
/// person again, and each side is recomputed from its own events.
pub async fn split(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ChangeBody>, AppError> {
    change(app, &body, EdgeKind::Exclude).await
}

async fn change(app: AppState, body: &[u8], kind: EdgeKind) -> Result<Json<ChangeBody>, AppError> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        AppError::BadParameter(Problem::new("body", format!("must be a JSON object: {e}")))
    })?;
    let (a, b) =
        people::identity_change(&body, app.cfg.identity_rules()).map_err(AppError::BadParameter)?;
    let edge =
        Edge::new(kind, app.clock.now(), uuid::Uuid::new_v4(), a, b).from_origin(Origin::Admin);
    ask(app
        .store
        .add_edges(app.cfg.brand_id(), std::slice::from_ref(&edge)))
    .await?;
    tracing::info!(
        action = kind.as_str(),
        edge_id = %edge.event_id,
        "identity changed by an admin"
    );
    let (_, p) = partition(&app).await?;
    stamp_partition(&app.store, app.cfg.brand_id(), &p).await;
    let person = |id| p.person_of(id).map(|x| x.id.0.hyphenated().to_string());
    let (a_person, b_person) = (person(&edge.a), person(&edge.b));
    if kind == EdgeKind::Link && (a_person.is_none() || a_person != b_person) {
        let reason = p
            .rejected
            .iter()
            .find(|r| r.edge.event_id == edge.event_id)
            .map_or("not_applied", |r| r.reason.as_str());
        return Err(AppError::MergeRefused(reason.to_owned()));
    }
    Ok(Json(ChangeBody {
        status: "ok",
        edge: people::edge_body(&edge),
        a_person,
        b_person,
    }))
}

/// `GET /api/cdp/identity`: the identity figures of the whole log (people linked across
/// browsers and identifiers, and the refused links by reason) and the erasure audit.
pub async fn figures(State(app): State<AppState>) -> Result<Json<IdentityBody>, AppError> {
    let (_, p) = partition(&app).await?;
    let erasures = match &app.suppression {
        Some(_) => Some(
            app.store
                .erasure_figures(app.cfg.brand_id())
                .await
                .map_err(crate::erasure::erase_failed)?,
        ),
        None => None,
    };
    Ok(Json(IdentityBody {
        summary: identity::summary(&p),
        erasures,
    }))
}
