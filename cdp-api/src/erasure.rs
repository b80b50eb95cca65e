//! Erasing and exporting one person (GDPR art. 15, 17 and 20; CCPA): `DELETE
//! /api/cdp/people/{key}` and `GET /api/cdp/people/{key}/export`, both admin routes.
//!
//! An erasure, in order: the person's tombstones go into the collector's suppression set (from
//! then on the writers drop their events); every writer lands what it has applied and pauses,
//! and the profiles queued for saving are saved; the log is read again (a link made in
//! between widens the erasure); the store erases in one transaction (events, searches,
//! profiles, edges, rollup contributions; tombstones and the audit row kept); the profiles of
//! other people's browsers that lost events are rebuilt from what they keep; the writers
//! resume, having dropped every touched browser from their caches. One erasure runs at a
//! time. The log line names the erasure and the person's opaque id and counts, never an
//! identifier.

use crate::api::ask;
use crate::people::partition;
use crate::reply::{AppError, Refusal};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::Json;
use cdp_adapters::{EraseError, EraseStore, ProfileStore};
use cdp_answers::people::{self, ErasureBody, ExportBody};
use cdp_core::identity::{self, Erasure, Found};
use cdp_core::intake::Problem;
use std::collections::BTreeSet;

/// The person `key` names, or the 400 or 404 to answer: a browser no link touched counts only
/// when it has stored events.
async fn named<'p>(
    app: &AppState,
    p: &'p identity::Partition,
    key: &str,
) -> Result<Found<'p>, AppError> {
    let Some(found) = identity::find(p, key, app.cfg.identity_rules()) else {
        return Err(AppError::BadParameter(Problem::new(
            "key",
            "must be a person id, an email, a customer id or an anonymous id",
        )));
    };
    if let Found::Browser(b) = &found {
        let brand = app.cfg.brand_id();
        if ask(app.store.visitor_events(brand, b, None))
            .await?
            .is_empty()
        {
            return Err(AppError::ProfileNotFound);
        }
    }
    Ok(found)
}

/// An erasure store's failure as the answer.
pub(crate) fn erase_failed(e: EraseError) -> AppError {
    match e {
        EraseError::Store(s) if s.is_unavailable() => AppError::Offline(s.to_string()),
        EraseError::Store(s) => AppError::QueryFailed(s.to_string()),
        e @ EraseError::Unsupported { .. } => AppError::Unsupported(e.to_string()),
    }
}

/// `DELETE /api/cdp/people/{key}`. The erasure runs as a task of its own, so a client that
/// goes away does not cut it short between its steps.
pub async fn erase(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ErasureBody>, AppError> {
    match tokio::spawn(erase_person(app, key)).await {
        Ok(answer) => answer.map(Json),
        Err(_) => Err(Refusal::Internal.into()),
    }
}

async fn erase_person(app: AppState, key: String) -> Result<ErasureBody, AppError> {
    let Some(suppression) = app.suppression.clone() else {
        // A store that cannot erase says so whatever the key; otherwise the key is missing.
        if app.store.backend() == "supabase" {
            let e = EraseError::Unsupported {
                backend: "Supabase REST",
            };
            return Err(AppError::Unsupported(e.to_string()));
        }
        return Err(AppError::EraseUnconfigured);
    };
    let tombstone_key = suppression.key();
    let _one_at_a_time = app.erasing.lock().await;
    let rules = app.cfg.identity_rules();
    let brand = app.cfg.brand_id();
    let (log, p) = partition(&app).await?;
    let first = Erasure::of(&named(&app, &p, &key).await?, &log, rules);
    let mut added = suppression.add(
        first
            .clone()
            .keyed(tombstone_key)
            .tombstones
            .into_iter()
            .map(|t| t.hash),
    );
    let paused = match app.writers.pause().await {
        Ok(p) => p,
        Err(_) => {
            suppression.remove(&added);
            return Err(Refusal::StoreUnavailable.into());
        }
    };
    let result = async {
        let (log, p) = partition(&app).await?;
        let again = identity::find(&p, &key, rules).map(|f| Erasure::of(&f, &log, rules));
        let erasure = match again {
            Some(e) => first.clone().widen(e),
            None => first.clone(),
        }
        .keyed(tombstone_key);
        added.extend(suppression.add(erasure.tombstones.iter().map(|t| t.hash.clone())));
        let id = uuid::Uuid::new_v4();
        let erased = app
            .store
            .erase(brand, &erasure, rules, id, app.clock.now())
            .await
            .map_err(erase_failed)?;
        Ok::<_, AppError>((id, erasure, erased))
    }
    .await;
    let (id, erasure, erased) = match result {
        Ok(done) => done,
        Err(e) => {
            // One transaction: nothing was erased, so nothing stays suppressed either.
            suppression.remove(&added);
            paused.resume(&BTreeSet::new());
            return Err(e);
        }
    };
    let rebuilt = rebuild(&app, &erased.rebuild).await;
    crate::people::stamp(&app.store, &app.cfg).await;
    let mut forget: BTreeSet<_> = erasure.browsers.iter().cloned().collect();
    forget.extend(erased.rebuild.iter().cloned());
    paused.resume(&forget);
    let person_id = erasure.person_id.map(|p| p.0.hyphenated().to_string());
    tracing::info!(
        erasure_id = %id,
        person_id = person_id.as_deref().unwrap_or("-"),
        identifiers = erasure.identifiers.len(),
        events = erased.events,
        searches = erased.searches,
        profiles = erased.profiles,
        edges = erased.edges,
        rebuilt_profiles = rebuilt,
        "person erased by an admin"
    );
    Ok(ErasureBody {
        status: "erased",
        erasure_id: id.hyphenated().to_string(),
        person_id,
        identifiers: erasure.identifiers.len(),
        events: erased.events,
        searches: erased.searches,
        profiles: erased.profiles,
        edges: erased.edges,
        rebuilt_profiles: rebuilt,
    })
}

/// Rebuilds and saves the profiles of browsers that lost events to an erasure, from the
/// events they keep; returns how many were saved. A failure is logged: the writers rebuild
/// a missing profile from the stored events on the browser's next event anyway.
async fn rebuild(app: &AppState, browsers: &[cdp_core::AnonymousId]) -> usize {
    if browsers.is_empty() {
        return 0;
    }
    let brand = app.cfg.brand_id();
    let since: Vec<_> = browsers.iter().map(|b| (b.clone(), None)).collect();
    let rows = match app.store.visitor_events_many(brand, &since).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, browsers = browsers.len(),
                "could not rebuild profiles after an erasure; they catch up on their next event");
            return 0;
        }
    };
    let profiles: Vec<_> = rows
        .values()
        .filter_map(|r| cdp_core::replay(&app.cfg, None, r))
        .collect();
    match app.store.save_profiles(&app.cfg, &profiles).await {
        Ok(()) => profiles.len(),
        Err(e) => {
            tracing::warn!(error = %e, browsers = browsers.len(),
                "could not save rebuilt profiles after an erasure; they catch up on their next event");
            0
        }
    }
}

/// `GET /api/cdp/people/{key}/export`: everything held about the person, as JSON.
pub async fn export(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ExportBody>, AppError> {
    let rules = app.cfg.identity_rules();
    let brand = app.cfg.brand_id();
    let (log, p) = partition(&app).await?;
    let found = named(&app, &p, &key).await?;
    let erasure = Erasure::of(&found, &log, rules);
    let since: Vec<_> = erasure
        .candidate_browsers
        .iter()
        .map(|b| (b.clone(), None))
        .collect();
    let rows: Vec<cdp_core::EventRow> = ask(app.store.visitor_events_many(brand, &since))
        .await?
        .into_values()
        .flatten()
        .filter(|r| erasure.removes(r, rules))
        .collect();
    let own: Vec<&cdp_core::EventRow> = rows
        .iter()
        .filter(|r| erasure.browsers.contains(&r.anonymous_id))
        .collect();
    let now = app.clock.now();
    let person = match people::person_body(&app.cfg, &p, &log, &found, &own, now) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(AppError::ProfileNotFound),
        Err(_) => return Err(Refusal::Internal.into()),
    };
    tracing::info!(
        person_id = %person.person_id,
        events = rows.len(),
        "person exported by an admin"
    );
    Ok(Json(people::export_body(person, rows, &erasure.edges, now)))
}
