//! Receive slots in the node (docs/architecture.md §7.18): in a room created with receive slots,
//! every participant gets, at join, one outgoing track per slot of the room policy's
//! [`SlotCounts`] (audio `a0…`, video `v0…`, screen `s0…`), placed in the `recvonly` sections of
//! its offer in offer order; slots the offer has no section for are offered once, right after
//! the peer connects. When every slot is negotiated the core gets the [`SlotLayout`] and maps
//! the room's tracks onto it itself; the node reports each new map as [`NodeEvent::Slots`]. No
//! per-track subscription happens in such a room, so a join or a leave renegotiates no one.

use std::time::Instant;

use sfu_forwarding::{
    DownstreamParams, ParticipantId, RtxParams, SlotCounts, SlotKind, SlotLayout, SlotRef, TrackId,
};

use super::state::{State, track_name};
use super::{NodeEvent, SlotEntry};
use crate::transport::{MediaKind, NegotiatedOutgoingTrack, OutgoingTrack};

/// The codec of audio slots.
const AUDIO_MIME: &str = "audio/opus";
/// The codec of video and screen slots: a slot carries any publisher's camera, so one codec
/// for all (VP8, what every client publishes; a VP9 publisher's camera is not put on slots
/// correctly, see §7.18).
const VIDEO_MIME: &str = "video/VP8";

/// One slot's outgoing track, chosen at join.
#[derive(Debug, Clone)]
pub(crate) struct PlannedSlot {
    slot: SlotRef,
    ssrc: u32,
    rtx_ssrc: u32,
    /// What the negotiation settled, once it has.
    down: Option<DownstreamParams>,
}

/// A participant's receive slots: planned at join, handed to the core once all are negotiated.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotPlan {
    slots: Vec<PlannedSlot>,
    /// Whether the core has the layout.
    in_core: bool,
}

fn slot_mime(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Audio => AUDIO_MIME,
        SlotKind::Video | SlotKind::Screen => VIDEO_MIME,
    }
}

/// Every slot of `counts`, audio first, then video, then screen (the order the transport
/// places them in the offer's `recvonly` sections).
fn slot_refs(counts: SlotCounts) -> impl Iterator<Item = SlotRef> {
    [
        (SlotKind::Audio, counts.audio),
        (SlotKind::Video, counts.video),
        (SlotKind::Screen, counts.screen),
    ]
    .into_iter()
    .flat_map(|(kind, n)| {
        (0..n).map(move |i| SlotRef {
            kind,
            index: i as u8,
        })
    })
}

/// Whether the transport must offer slots after connect: `offer_receiving` (audio, video) has
/// fewer `recvonly` sections of a kind than `counts` has slots of it.
pub(crate) fn slots_need_offer(counts: SlotCounts, offer_receiving: (usize, usize)) -> bool {
    offer_receiving.0 < counts.audio || offer_receiving.1 < counts.video + counts.screen
}

impl State {
    /// Chooses the SSRCs of `subscriber`'s slots and returns the plan and the outgoing tracks
    /// to add to its peer connection.
    pub(crate) fn plan_slots(
        &mut self,
        subscriber: ParticipantId,
        counts: SlotCounts,
    ) -> (SlotPlan, Vec<OutgoingTrack>) {
        let mut plan = SlotPlan::default();
        let mut outgoing = Vec::new();
        let stream_id = self
            .members
            .get(&subscriber)
            .map(|m| format!("slots-{}", m.device))
            .unwrap_or_default();
        for slot in slot_refs(counts) {
            let ssrc = self.allocate_ssrc();
            let rtx_ssrc = self.allocate_ssrc();
            plan.slots.push(PlannedSlot {
                slot,
                ssrc,
                rtx_ssrc,
                down: None,
            });
            outgoing.push(OutgoingTrack {
                kind: match slot.kind {
                    SlotKind::Audio => MediaKind::Audio,
                    SlotKind::Video | SlotKind::Screen => MediaKind::Video,
                },
                ssrc,
                rtx_ssrc: Some(rtx_ssrc),
                stream_id: stream_id.clone(),
                track_id: slot.to_string(),
                mime_type: slot_mime(slot.kind).to_owned(),
            });
        }
        (plan, outgoing)
    }

    /// A negotiation completed: records the payload types and mids of the slots among
    /// `outgoing`, and hands their participant's layout to the core once every slot has them.
    /// Found by SSRC: the first answer's negotiation is reported before the node knows the
    /// peer's id.
    pub(crate) fn slots_negotiated(&mut self, now: Instant, outgoing: &[NegotiatedOutgoingTrack]) {
        if self.slot_rooms.is_empty() {
            return;
        }
        let Some(p) = outgoing.iter().find_map(|o| {
            self.members.iter().find_map(|(p, m)| {
                m.slots
                    .as_ref()
                    .is_some_and(|plan| {
                        !plan.in_core && plan.slots.iter().any(|s| s.ssrc == o.ssrc)
                    })
                    .then_some(*p)
            })
        }) else {
            return;
        };
        let Some(plan) = self.members.get_mut(&p).and_then(|m| m.slots.as_mut()) else {
            return;
        };
        for planned in &mut plan.slots {
            let Some(o) = outgoing.iter().find(|o| o.ssrc == planned.ssrc) else {
                continue;
            };
            if o.mid.is_none() {
                continue;
            }
            let mime = slot_mime(planned.slot.kind);
            let Some(codec) = o
                .codecs
                .iter()
                .find(|c| c.mime_type.eq_ignore_ascii_case(mime))
            else {
                tracing::debug!(slot = %planned.slot, "slot negotiated without its codec");
                continue;
            };
            planned.down = Some(DownstreamParams {
                ssrc: planned.ssrc,
                payload_type: codec.payload_type,
                rtx: codec.rtx_payload_type.map(|pt| RtxParams {
                    ssrc: planned.rtx_ssrc,
                    payload_type: pt,
                }),
                mid: o.mid.clone(),
            });
        }
        if plan.slots.iter().any(|s| s.down.is_none()) {
            return;
        }
        let mut layout = SlotLayout::default();
        for s in &plan.slots {
            let Some(down) = s.down.clone() else { continue };
            match s.slot.kind {
                SlotKind::Audio => layout.audio.push(down),
                SlotKind::Video => layout.video.push(down),
                SlotKind::Screen => layout.screen.push(down),
            }
        }
        plan.in_core = true;
        if let Err(e) = self.sfu.set_slot_layout(now, p, layout) {
            tracing::debug!(error = %e, "slot layout refused by the core");
        }
    }

    /// The node event of a core `SlotsChanged`, in room, device and track names.
    pub(crate) fn slots_event(
        &self,
        subscriber: ParticipantId,
        version: u64,
        map: &[(SlotRef, Option<TrackId>)],
    ) -> Option<NodeEvent> {
        let m = self.members.get(&subscriber)?;
        let layout = self.sfu.slot_layout(subscriber)?;
        let slots = map
            .iter()
            .map(|(slot, track)| {
                let down = match slot.kind {
                    SlotKind::Audio => layout.audio.get(usize::from(slot.index)),
                    SlotKind::Video => layout.video.get(usize::from(slot.index)),
                    SlotKind::Screen => layout.screen.get(usize::from(slot.index)),
                };
                let publisher = track
                    .and_then(|t| self.tracks.get(&t))
                    .and_then(|entry| self.members.get(&entry.publisher))
                    .map(|p| p.device.clone());
                SlotEntry {
                    slot: slot.to_string(),
                    mid: down.and_then(|d| d.mid.clone()).unwrap_or_default(),
                    track: track.map(track_name),
                    publisher,
                }
            })
            .collect();
        Some(NodeEvent::Slots {
            room: m.room.clone(),
            device: m.device.clone(),
            version,
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_listed_audio_then_video_then_screen() {
        let counts = SlotCounts {
            audio: 2,
            video: 1,
            screen: 1,
        };
        let names: Vec<String> = slot_refs(counts).map(|s| s.to_string()).collect();
        assert_eq!(names, ["a0", "a1", "v0", "s0"]);
    }

    #[test]
    fn an_offer_short_of_receive_sections_needs_a_node_offer() {
        let counts = SlotCounts {
            audio: 4,
            video: 25,
            screen: 2,
        };
        assert!(!slots_need_offer(counts, (4, 27)));
        assert!(slots_need_offer(counts, (3, 27)));
        assert!(slots_need_offer(counts, (4, 25)));
        assert!(slots_need_offer(counts, (0, 0)));
    }
}
