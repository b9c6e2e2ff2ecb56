//! Offers the media node makes to a device (a renegotiation it starts: slots at join, a new
//! subscription, an ICE restart) are held until the device sends SDP back, so a peer never
//! stays stuck with an offer nobody answered: the SFU's side of that peer waits in
//! `have-local-offer` and can make no other change.
//!
//! - An offer sent to a suspended device (its WebSocket lost, the message dropped) goes again
//!   to the connection it resumes on, right after its `joined`.
//! - An offer left unanswered for [`OFFER_ANSWER_TIMEOUT`] is sent again, at most
//!   [`OFFER_RESENDS`] times (a client that lost it or dropped it while busy).
//! - Still unanswered after that, the device's media session is reset: the node drops it and
//!   the device alone gets `media_reset` `offer_unanswered`, so it starts a fresh media session
//!   (keys untouched) as after a node restart.
//!
//! Any SDP from the device (its answer, or an offer of its own that moves the negotiation on)
//! settles the pending offer. An offer the node made for a media session the device no longer
//! has (reset, or replaced by a reconnect, while the offer travelled) is dropped. Each re-send and reset is counted
//! (`signaling_node_offers_total{outcome}`).

use std::time::{Duration, Instant};

use super::{Output, Room};
use crate::media_node::MediaSessionId;
use crate::protocol::{MediaResetNotice, MediaResetReason, SdpBody, ServerMessage};

/// How long a device has to answer a node offer before it is sent again.
pub const OFFER_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times an unanswered node offer is sent again before the session is reset.
pub const OFFER_RESENDS: u32 = 2;

/// A node offer the device has not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOffer {
    sdp: String,
    /// When it was last sent.
    sent_at: Instant,
    /// Times it was sent again.
    resends: u32,
}

/// What became of a node offer (`signaling_node_offers_total{outcome}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferOutcome {
    /// Sent again on the connection a suspended device resumed on.
    ResentOnResume,
    /// Sent again after [`OFFER_ANSWER_TIMEOUT`] without an answer.
    ResentAfterTimeout,
    /// Unanswered after every re-send: the device's media session was reset.
    SessionReset,
    /// Made for a media session the device no longer has (reset or replaced meanwhile):
    /// dropped, not sent.
    StaleSession,
    /// Still queued to the device's connection when the device's own SDP settled it (its
    /// answer went out, or its own offer crossed it and the SFU withdrew it): not sent.
    Superseded,
}

impl OfferOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            OfferOutcome::ResentOnResume => "resent_on_resume",
            OfferOutcome::ResentAfterTimeout => "resent_after_timeout",
            OfferOutcome::SessionReset => "session_reset",
            OfferOutcome::StaleSession => "stale_session",
            OfferOutcome::Superseded => "superseded",
        }
    }

    /// Every outcome, for the metric's series.
    pub const ALL: [OfferOutcome; 5] = [
        OfferOutcome::ResentOnResume,
        OfferOutcome::ResentAfterTimeout,
        OfferOutcome::SessionReset,
        OfferOutcome::StaleSession,
        OfferOutcome::Superseded,
    ];
}

impl Room {
    /// The media node offers `sdp` to `device`: sent, and held until the device answers.
    ///
    /// An offer for a media session that is no longer the device's (`session` named and not
    /// its current one: the session was reset or replaced while the offer was on its way) is
    /// dropped: the device's current peer connection could not answer it.
    pub fn node_offer(
        &mut self,
        device: &str,
        session: Option<MediaSessionId>,
        sdp: String,
        now: Instant,
    ) -> Vec<Output> {
        let Some(m) = self.members.get_mut(device) else {
            return Vec::new();
        };
        if session.is_some_and(|s| s != m.media_session) {
            return vec![Output::NodeOffer(OfferOutcome::StaleSession)];
        }
        m.node_offer = Some(PendingOffer {
            sdp: sdp.clone(),
            sent_at: now,
            resends: 0,
        });
        vec![Output::Send {
            to: vec![m.conn],
            message: ServerMessage::Offer(SdpBody { sdp }),
        }]
    }

    /// `device` sent SDP to the media node (an answer, or an offer of its own): its pending node
    /// offer, if any, is settled. Returns the media session the SDP is for (`None`: the device
    /// is not in the room).
    pub fn sdp_from_device(&mut self, device: &str) -> Option<MediaSessionId> {
        let m = self.members.get_mut(device)?;
        m.node_offer = None;
        Some(m.media_session)
    }

    /// Whether `session` (when the media node names one) is `device`'s current media session.
    pub fn is_current_session(&self, device: &str, session: Option<MediaSessionId>) -> bool {
        self.members
            .get(device)
            .is_some_and(|m| session.is_none_or(|s| s == m.media_session))
    }

    /// The pending node offer of a device that just resumed on a new connection, sent there
    /// (what went to its lost connection was dropped).
    pub(super) fn resend_offer_on_resume(&mut self, device: &str, now: Instant) -> Vec<Output> {
        let Some(m) = self.members.get_mut(device) else {
            return Vec::new();
        };
        let Some(pending) = m.node_offer.as_mut() else {
            return Vec::new();
        };
        pending.sent_at = now;
        vec![
            Output::Send {
                to: vec![m.conn],
                message: ServerMessage::Offer(SdpBody {
                    sdp: pending.sdp.clone(),
                }),
            },
            Output::NodeOffer(OfferOutcome::ResentOnResume),
        ]
    }

    /// When the earliest unanswered node offer is due to be sent again (or its session reset).
    /// A suspended device's offer waits for its resume instead.
    pub(super) fn node_offer_due(&self) -> Option<Instant> {
        self.members
            .values()
            .filter(|m| m.suspended_until.is_none())
            .filter_map(|m| m.node_offer.as_ref())
            .map(|p| p.sent_at + OFFER_ANSWER_TIMEOUT)
            .min()
    }

    /// Sends again every node offer unanswered for [`OFFER_ANSWER_TIMEOUT`]; resets the media
    /// session of a device that left one unanswered after [`OFFER_RESENDS`] re-sends.
    pub(super) fn resend_node_offers_if_due(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        for (device, m) in self.members.iter_mut() {
            if m.suspended_until.is_some() {
                continue;
            }
            let Some(pending) = m.node_offer.as_mut() else {
                continue;
            };
            if now < pending.sent_at + OFFER_ANSWER_TIMEOUT {
                continue;
            }
            if pending.resends < OFFER_RESENDS {
                pending.resends += 1;
                pending.sent_at = now;
                out.push(Output::Send {
                    to: vec![m.conn],
                    message: ServerMessage::Offer(SdpBody {
                        sdp: pending.sdp.clone(),
                    }),
                });
                out.push(Output::NodeOffer(OfferOutcome::ResentAfterTimeout));
                continue;
            }
            m.node_offer = None;
            out.push(Output::MediaRemove {
                device: device.clone(),
                session: m.media_session,
            });
            // The device's next offer starts a new session; a late removal of this one cannot
            // touch it.
            m.media_session = MediaSessionId::random();
            out.push(Output::Send {
                to: vec![m.conn],
                message: ServerMessage::MediaReset(MediaResetNotice {
                    reason: MediaResetReason::OfferUnanswered,
                }),
            });
            out.push(Output::NodeOffer(OfferOutcome::SessionReset));
        }
        out
    }
}
