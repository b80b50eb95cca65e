//! The half of an erasure that is the same on every backend and does no I/O: which of the
//! candidate rows a store read go (the core's [`Erasure::removes`]), and what their removal
//! takes out of the rollups (the core's [`fold::without`]).

use cdp_core::counting::{fold, CountedEvent};
use cdp_core::identity::{Erasure, IdentityRules};
use cdp_core::{AnonymousId, EventRow};
use std::collections::{BTreeSet, HashSet};

/// The stored events an erasure removes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Removed {
    /// Their `seq`s.
    pub seqs: Vec<i64>,
    /// Their event ids (hyphenated), for their search rows.
    pub event_ids: Vec<String>,
    /// The browsers they belong to, each once, in order.
    pub visitors: Vec<String>,
}

/// Which of `candidates` (rows with their `seq`) the erasure removes.
pub(crate) fn removed(
    candidates: Vec<(i64, EventRow)>,
    erasure: &Erasure,
    rules: &IdentityRules,
) -> Removed {
    let mut out = Removed::default();
    let mut visitors = BTreeSet::new();
    for (seq, row) in candidates {
        if erasure.removes(&row, rules) {
            out.seqs.push(seq);
            out.event_ids.push(row.event_id.hyphenated().to_string());
            visitors.insert(row.anonymous_id.as_str().to_owned());
        }
    }
    out.visitors = visitors.into_iter().collect();
    out
}

impl Removed {
    /// The rollup changes, given `before`: every folded event of [`Removed::visitors`].
    pub fn rollups(&self, before: &[CountedEvent]) -> fold::Removal {
        let gone: HashSet<i64> = self.seqs.iter().copied().collect();
        let kept: Vec<CountedEvent> = before
            .iter()
            .filter(|e| !gone.contains(&e.seq))
            .cloned()
            .collect();
        fold::without(before, &kept)
    }

    /// The browsers whose stored profiles go: the erased ones and every one that lost events.
    pub fn profiles(&self, erasure: &Erasure) -> Vec<String> {
        let mut all: BTreeSet<String> = self.visitors.iter().cloned().collect();
        all.extend(erasure.browsers.iter().map(|b| b.as_str().to_owned()));
        all.into_iter().collect()
    }

    /// The browsers that lost events but are not erased: their profiles are rebuilt from the
    /// events they keep.
    pub fn rebuild(&self, erasure: &Erasure) -> Vec<AnonymousId> {
        self.visitors
            .iter()
            .filter(|v| !erasure.browsers.iter().any(|b| b.as_str() == v.as_str()))
            .map(AnonymousId::new)
            .collect()
    }
}
