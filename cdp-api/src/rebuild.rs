//! `cdp rebuild-profiles`: recomputes golden profiles from the stored events, which are the
//! source of truth, by applying each visitor's events in processing order with the processing
//! time they had, then saving the result over the stored profile.
//!
//! Without a visitor list it walks every visitor that has events, a page at a time, so memory
//! stays bounded by one page of visitors and their events.

use cdp_adapters::{ProfileStore, Store, StoreError};
use cdp_core::{replay, AnonymousId, Config, Profile};

/// Visitors rebuilt per page (one read of their events, one save).
const PAGE_VISITORS: usize = 500;

/// Which profiles to rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitors {
    /// Every visitor with stored events.
    All,
    /// These visitors only.
    Only(Vec<AnonymousId>),
}

/// Rebuilds the chosen profiles; returns how many had events.
pub async fn run(store: &Store, cfg: &Config, visitors: &Visitors) -> Result<usize, StoreError> {
    match visitors {
        Visitors::Only(ids) => {
            let mut n = 0;
            for page in ids.chunks(PAGE_VISITORS) {
                n += rebuild_page(store, cfg, page).await?;
            }
            Ok(n)
        }
        Visitors::All => {
            let mut n = 0;
            let mut after: Option<AnonymousId> = None;
            loop {
                let page = store
                    .visitor_ids(cfg.brand_id(), after.as_ref(), PAGE_VISITORS)
                    .await?;
                let Some(last) = page.last().cloned() else {
                    return Ok(n);
                };
                n += rebuild_page(store, cfg, &page).await?;
                tracing::info!(rebuilt = n, "rebuilding profiles");
                after = Some(last);
            }
        }
    }
}

async fn rebuild_page(
    store: &Store,
    cfg: &Config,
    ids: &[AnonymousId],
) -> Result<usize, StoreError> {
    let since: Vec<_> = ids.iter().map(|id| (id.clone(), None)).collect();
    let mut events = store.visitor_events_many(cfg.brand_id(), &since).await?;
    let mut rebuilt: Vec<Profile> = Vec::with_capacity(ids.len());
    for id in ids {
        match replay(cfg, None, &events.remove(id).unwrap_or_default()) {
            Some(p) => rebuilt.push(p),
            None => tracing::warn!(visitor = %id, "no stored events; profile left as is"),
        }
    }
    store.save_profiles(cfg, &rebuilt).await?;
    Ok(rebuilt.len())
}
