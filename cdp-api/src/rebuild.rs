//! `cdp rebuild-profiles`: recomputes golden profiles from the stored events, which are the
//! source of truth, by applying each visitor's events in processing order with the processing
//! time they had, then saving the result over the stored profile.

use cdp_adapters::{ProfileStore, Store, StoreError};
use cdp_core::{apply, AnonymousId, Config, Profile};

/// Rebuilds the given visitors' profiles; returns how many had events.
pub async fn run(
    store: &Store,
    cfg: &Config,
    visitors: &[AnonymousId],
) -> Result<usize, StoreError> {
    let mut rebuilt: Vec<Profile> = Vec::new();
    for id in visitors {
        let rows = store.visitor_events(cfg.brand_id(), id, None).await?;
        let mut profile = None;
        for row in rows {
            profile = Some(apply(cfg, profile, &row.to_valid_event(), row.processed_at).profile);
        }
        match profile {
            Some(p) => rebuilt.push(p),
            None => tracing::warn!(visitor = %id, "no stored events; profile left as is"),
        }
    }
    for chunk in rebuilt.chunks(500) {
        store.save_profiles(cfg, chunk).await?;
    }
    Ok(rebuilt.len())
}
