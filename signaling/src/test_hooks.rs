//! Test-only misbehaviour of the service, to prove that clients do not trust it.
//!
//! Only `signaling dev --test-hooks …` can turn a hook on (`serve` has no such flag, and the
//! configuration file cannot name one): a production service never lies. Each hook makes the
//! service say something false that an honest service never would, so that a browser test can
//! show the client believes the authenticated SFrame KID (docs/e2ee.md §1.1) and not the
//! server's word.

use crate::protocol::TrackInfo;

/// One test hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum TestHook {
    /// `track_published` (and `joined.tracks`) names the wrong publisher: each recipient but
    /// the publisher is told that a track belongs to another member, neither its real publisher
    /// nor the recipient (with three or more members; with two there is no third name and the
    /// truth is told).
    LieTrackSource,
}

/// The hooks in force (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestHooks {
    lie_track_source: bool,
}

impl TestHooks {
    /// The given hooks, on. Only `signaling dev` calls this.
    pub fn enabled(hooks: &[TestHook]) -> Self {
        TestHooks {
            lie_track_source: hooks.contains(&TestHook::LieTrackSource),
        }
    }

    /// Whether any hook is on.
    pub fn any(&self) -> bool {
        self.lie_track_source
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
        if self.lie_track_source && recipient != track.publisher {
            let others = |m: &&str| *m != track.publisher && *m != recipient;
            let after = members
                .clone()
                .filter(others)
                .find(|m| *m > track.publisher.as_str());
            if let Some(liar) = after.or_else(|| members.clone().find(others)) {
                told.publisher = liar.to_string();
            }
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{TrackKind, TrackSource};

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
}
