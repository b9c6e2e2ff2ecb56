//! What a join costs the participants already in the room: the SFU `offer`s they received after
//! their first answer (each one a renegotiation of a connected peer connection), and the SFU's
//! own counts of renegotiations and receive-slot reassignments over the run, read from its
//! `/metrics` page (`sfu_renegotiations_total{reason}`, `sfu_slot_reassignments_total{kind}`).
//!
//! In a room with receive slots a join should cost the others nothing: the joiner's first
//! offer carries every receive section it will use, and new tracks are mapped onto existing
//! slots (`slots` messages), so `offers_to_existing_participants_after_join` is 0.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics_scrape::{Exposition, scrape};

/// Counter of the SFU's renegotiations, by `reason`.
pub const RENEGOTIATIONS_METRIC: &str = "sfu_renegotiations_total";

/// Counter of the SFU's receive-slot reassignments, by `kind`.
pub const SLOT_REASSIGNMENTS_METRIC: &str = "sfu_slot_reassignments_total";

/// Deadline of one `/metrics` request.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The run's renegotiation figures (report field `renegotiation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenegotiationStats {
    /// The room was created with receive slots (`--receive-slots`).
    pub receive_slots: bool,
    /// SFU `offer` messages the participants received after their first answer, summed.
    pub offers_to_existing_participants_after_join: u64,
    /// Growth of `sfu_renegotiations_total` over the run, by `reason`; `None` without the
    /// SFU's `/metrics` page.
    pub sfu_renegotiations: Option<BTreeMap<String, u64>>,
    /// Growth of `sfu_slot_reassignments_total` over the run, by `kind`; `None` without the
    /// SFU's `/metrics` page.
    pub sfu_slot_reassignments: Option<BTreeMap<String, u64>>,
}

impl RenegotiationStats {
    /// One line for the summary table.
    pub fn summary(&self) -> String {
        let map = |m: &Option<BTreeMap<String, u64>>| match m {
            None => "-".to_owned(),
            Some(m) if m.is_empty() => "none".to_owned(),
            Some(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        format!(
            "{} room; {} offers after join; sfu renegotiations: {}; slot reassignments: {}",
            if self.receive_slots {
                "slot"
            } else {
                "per-track"
            },
            self.offers_to_existing_participants_after_join,
            map(&self.sfu_renegotiations),
            map(&self.sfu_slot_reassignments),
        )
    }
}

/// The SFU's renegotiation counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SfuCounters {
    renegotiations: BTreeMap<String, f64>,
    reassignments: BTreeMap<String, f64>,
}

impl SfuCounters {
    /// Reads the counters from the SFU's `/metrics` page at `url`.
    pub fn scrape(url: &str) -> Option<Self> {
        scrape(url, SCRAPE_TIMEOUT)
            .ok()
            .map(|e| Self::from_page(&e))
    }

    /// The counters of a parsed page (absent counters read as none).
    pub fn from_page(page: &Exposition) -> Self {
        SfuCounters {
            renegotiations: by_label(page, RENEGOTIATIONS_METRIC, "reason"),
            reassignments: by_label(page, SLOT_REASSIGNMENTS_METRIC, "kind"),
        }
    }

    /// Growth from `before` to `self`, by label; labels that did not grow are left out.
    pub fn since(&self, before: &SfuCounters) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        (
            growth(&before.renegotiations, &self.renegotiations),
            growth(&before.reassignments, &self.reassignments),
        )
    }
}

fn by_label(page: &Exposition, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in page.samples.iter().filter(|s| s.name == name) {
        let key = s.label(label).unwrap_or("").to_owned();
        *out.entry(key).or_insert(0.0) += s.value;
    }
    out
}

fn growth(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d >= 0.5).then(|| (k.clone(), d.round() as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics_scrape::parse;

    #[test]
    fn growth_is_by_label_and_leaves_out_what_did_not_grow() {
        let before = SfuCounters::from_page(
            &parse(
                "sfu_renegotiations_total{reason=\"join\"} 3\n\
                 sfu_renegotiations_total{reason=\"publish\"} 1\n",
            )
            .unwrap(),
        );
        let after = SfuCounters::from_page(
            &parse(
                "sfu_renegotiations_total{reason=\"join\"} 3\n\
                 sfu_renegotiations_total{reason=\"publish\"} 5\n\
                 sfu_slot_reassignments_total{kind=\"video\"} 2\n",
            )
            .unwrap(),
        );
        let (renegotiations, reassignments) = after.since(&before);
        assert_eq!(renegotiations, BTreeMap::from([("publish".to_owned(), 4)]));
        assert_eq!(reassignments, BTreeMap::from([("video".to_owned(), 2)]));
    }
}
