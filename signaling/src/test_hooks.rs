//! Test-only misbehaviour of the service, to prove that clients do not trust it or survive it.
//!
//! Only `signaling dev --test-hooks …` can turn a hook on (`serve` has no such flag, and the
//! configuration file cannot name one): a production service never lies. The lying hooks make
//! the service say something false that an honest service never would, so that a browser test
//! can show the client believes the authenticated SFrame KID (docs/e2ee.md §1.1) and not the
//! server's word. [`TestHook::SeverConnections`] lets a test cut one device's WebSocket the way a
//! network blip does (no close frame), so that it can show the client reconnects.

use crate::protocol::{SlotMap, TrackInfo};

/// One test hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum TestHook {
    /// `track_published` (and `joined.tracks`) names the wrong publisher: each recipient but
    /// the publisher is told that a track belongs to another member, neither its real publisher
    /// nor the recipient (with three or more members; with two there is no third name and the
    /// truth is told).
    LieTrackSource,
    /// `slots` (receive-slot rooms) names a wrong `source` for every filled slot: the first
    /// member after the real source that is neither it nor the recipient (with three or more
    /// members; with two the truth is told).
    LieSlotSource,
    /// The admin API gets `POST /v1/rooms/{room}/participants/{device}/sever`: the device's
    /// WebSocket ends without a close frame (the client sees 1006, as after a network blip),
    /// and the room handles it as any dropped connection.
    SeverConnections,
}

/// The hooks in force (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestHooks {
    lie_track_source: bool,
    lie_slot_source: bool,
    sever_connections: bool,
}

impl TestHooks {
    /// The given hooks, on. Only `signaling dev` calls this.
    pub fn enabled(hooks: &[TestHook]) -> Self {
        TestHooks {
            lie_track_source: hooks.contains(&TestHook::LieTrackSource),
            lie_slot_source: hooks.contains(&TestHook::LieSlotSource),
            sever_connections: hooks.contains(&TestHook::SeverConnections),
        }
    }

    /// Whether any hook is on.
    pub fn any(&self) -> bool {
        self.lies() || self.sever_connections
    }

    /// Whether a hook that makes the service lie to its clients is on.
    pub fn lies(&self) -> bool {
        self.lie_track_source || self.lie_slot_source
    }

    /// Whether the admin API may sever a device's connection ([`TestHook::SeverConnections`]).
    pub fn sever_connections(&self) -> bool {
        self.sever_connections
    }

    /// `track` as the service tells it to `recipient`: the truth, or under
    /// [`TestHook::LieTrackSource`] (to anyone but the publisher) with the publisher replaced by
    /// the first member after it (in device order, wrapping) that is neither the real publisher
    /// nor the recipient. `members` is every joined device.
    pub fn track_as_told<'a>(
        &self,
        track: &TrackInfo,
        recipient: &str,
        members: impl Iterator<Item = &'a str> + Clone,
    ) -> TrackInfo {
        let mut told = track.clone();
        // A publisher is told the truth about its own tracks (it would subscribe to them).
        if self.lie_track_source
            && recipient != track.publisher
            && let Some(liar) = third_member(&track.publisher, recipient, members)
        {
            told.publisher = liar.to_string();
        }
        told
    }

    /// The `slots` map as the service tells it to `recipient`: the truth, or under
    /// [`TestHook::LieSlotSource`] with each filled slot's `source` replaced as
    /// [`Self::track_as_told`] replaces a publisher. `members` is every joined device.
    pub fn slots_as_told<'a>(
        &self,
        map: SlotMap,
        recipient: &str,
        members: impl Iterator<Item = &'a str> + Clone,
    ) -> SlotMap {
        let mut told = map;
        if self.lie_slot_source {
            for slot in &mut told.slots {
                let Some(source) = slot.source.as_deref() else {
                    continue;
                };
                if let Some(liar) = third_member(source, recipient, members.clone()) {
                    slot.source = Some(liar.to_string());
                }
            }
        }
        told
    }
}

/// The first member after `truth` (in device order, wrapping) that is neither `truth` nor
/// `recipient`; none with fewer than three members.
fn third_member<'a>(
    truth: &str,
    recipient: &str,
    members: impl Iterator<Item = &'a str> + Clone,
) -> Option<&'a str> {
    let others = |m: &&str| *m != truth && *m != recipient;
    let after = members.clone().filter(others).find(|m| *m > truth);
    after.or_else(|| members.clone().find(others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ReceiveSlotKind, SlotAssignment, TrackKind, TrackSource};

    fn track(publisher: &str) -> TrackInfo {
        TrackInfo {
            id: format!("TR_{publisher}_0"),
            publisher: publisher.into(),
            kind: TrackKind::Video,
            source: TrackSource::Camera,
            layers: vec![],
        }
    }

    #[test]
    fn without_hooks_the_truth_is_told() {
        let members = ["a", "b", "c"];
        let told = TestHooks::default().track_as_told(&track("a"), "b", members.iter().copied());
        assert_eq!(told.publisher, "a");
    }

    #[test]
    fn lie_track_source_names_a_third_member_to_each_recipient() {
        let hooks = TestHooks::enabled(&[TestHook::LieTrackSource]);
        let members = ["a", "b", "c"];
        let m = || members.iter().copied();
        assert_eq!(hooks.track_as_told(&track("a"), "b", m()).publisher, "c");
        assert_eq!(hooks.track_as_told(&track("a"), "c", m()).publisher, "b");
        assert_eq!(hooks.track_as_told(&track("c"), "b", m()).publisher, "a");
        // The publisher itself, and two members (no third name): the truth.
        assert_eq!(hooks.track_as_told(&track("a"), "a", m()).publisher, "a");
        assert_eq!(
            hooks
                .track_as_told(&track("a"), "b", ["a", "b"].into_iter())
                .publisher,
            "a"
        );
    }

    fn slot_map(sources: &[Option<&str>]) -> SlotMap {
        SlotMap {
            v: 1,
            version: 3,
            slots: sources
                .iter()
                .enumerate()
                .map(|(i, s)| SlotAssignment {
                    slot: format!("v{i}"),
                    kind: ReceiveSlotKind::Video,
                    mid: i.to_string(),
                    track: s.map(|s| format!("TR_{s}_1")),
                    source: s.map(str::to_string),
                })
                .collect(),
        }
    }

    #[test]
    fn lie_slot_source_names_a_third_member_in_each_filled_slot() {
        let hooks = TestHooks::enabled(&[TestHook::LieSlotSource]);
        let members = ["a", "b", "c"];
        let m = || members.iter().copied();
        let told = hooks.slots_as_told(slot_map(&[Some("a"), Some("c"), None]), "b", m());
        let sources: Vec<_> = told.slots.iter().map(|s| s.source.as_deref()).collect();
        assert_eq!(sources, [Some("c"), Some("a"), None]);
        // Only the source is false: the tracks, mids and version are the truth.
        assert_eq!(told.version, 3);
        assert_eq!(told.slots[0].track.as_deref(), Some("TR_a_1"));
        // Two members: no third name, the truth.
        let two = hooks.slots_as_told(slot_map(&[Some("a")]), "b", ["a", "b"].into_iter());
        assert_eq!(two.slots[0].source.as_deref(), Some("a"));
        // Without the hook (or with only the track hook), the truth.
        let honest = TestHooks::enabled(&[TestHook::LieTrackSource]);
        assert_eq!(
            honest.slots_as_told(slot_map(&[Some("a")]), "b", m()),
            slot_map(&[Some("a")])
        );
    }
}
