//! Why the node made or answered an offer after a participant joined: the counts behind
//! `sfu_renegotiations_total{reason}` (docs/metrics.md). A client's offer is classified by
//! comparing it with its previous one ([`OfferFacts`]); an offer the node makes by the change
//! that asked for it (one change may be folded into an offer already queued, so the counts are
//! of changes that asked for an offer).

use super::direction::sending_sections;
use super::sdp::ice_ufrag;

/// Renegotiations by reason, since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Renegotiations {
    /// A client's offer with more sending sections than its previous one.
    pub publish: u64,
    /// A client's offer with fewer sending sections, or the node removing an unpublished
    /// track from its subscribers.
    pub unpublish: u64,
    /// The node offering tracks a participant subscribed to.
    pub subscribe: u64,
    /// The node offering the removal of tracks a participant unsubscribed from.
    pub unsubscribe: u64,
    /// A client's offer with new ICE credentials (RFC 8445 §9).
    pub ice_restart: u64,
    /// Any other client offer.
    pub client_offer: u64,
    /// The node offering a joiner the receive slots its first offer had no `recvonly`
    /// section for (once, right after it connected; rooms with receive slots).
    pub slots_at_join: u64,
}

impl Renegotiations {
    /// `(reason label, count)` for every reason, as exported.
    pub fn by_reason(&self) -> [(&'static str, u64); 7] {
        [
            ("publish", self.publish),
            ("unpublish", self.unpublish),
            ("subscribe", self.subscribe),
            ("unsubscribe", self.unsubscribe),
            ("ice_restart", self.ice_restart),
            ("client_offer", self.client_offer),
            ("slots_at_join", self.slots_at_join),
        ]
    }

    /// Counts a client offer that followed one with `before` and has `after`.
    pub(crate) fn count_client_offer(&mut self, before: &OfferFacts, after: &OfferFacts) {
        let count = if before.ice_ufrag != after.ice_ufrag {
            &mut self.ice_restart
        } else if after.sending > before.sending {
            &mut self.publish
        } else if after.sending < before.sending {
            &mut self.unpublish
        } else {
            &mut self.client_offer
        };
        *count += 1;
    }
}

/// What a client's offer is compared on with its next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OfferFacts {
    /// The first `a=ice-ufrag` of the offer.
    pub(crate) ice_ufrag: Option<String>,
    /// How many media sections send.
    pub(crate) sending: usize,
}

impl OfferFacts {
    pub(crate) fn of(sdp: &str) -> Self {
        Self {
            ice_ufrag: ice_ufrag(sdp),
            sending: sending_sections(sdp).len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(ufrag: &str, sending: usize) -> OfferFacts {
        OfferFacts {
            ice_ufrag: Some(ufrag.to_owned()),
            sending,
        }
    }

    #[test]
    fn client_offers_are_classified_against_the_previous_one() {
        let mut r = Renegotiations::default();
        r.count_client_offer(&facts("a", 1), &facts("b", 1));
        r.count_client_offer(&facts("a", 1), &facts("a", 2));
        r.count_client_offer(&facts("a", 2), &facts("a", 1));
        r.count_client_offer(&facts("a", 1), &facts("a", 1));
        assert_eq!(
            r,
            Renegotiations {
                publish: 1,
                unpublish: 1,
                ice_restart: 1,
                client_offer: 1,
                ..Default::default()
            }
        );
    }
}
