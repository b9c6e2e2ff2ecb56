//! Small copyable ids for rooms, participants, tracks and subscriptions. Each is a slot index in
//! a flat slab plus a generation, so a stale id (of something removed) is refused rather than
//! aliasing whatever reused the slot.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            pub(crate) index: u32,
            pub(crate) generation: u32,
        }

        impl $name {
            pub(crate) fn new((index, generation): (u32, u32)) -> Self {
                Self { index, generation }
            }

            /// The slot index: small and dense, for shells that keep per-id state in a `Vec`.
            pub fn index(self) -> u32 {
                self.index
            }

            /// The id as one number (generation in the high half), for logs and maps.
            pub fn to_u64(self) -> u64 {
                u64::from(self.generation) << 32 | u64::from(self.index)
            }

            /// The inverse of [`Self::to_u64`].
            pub fn from_u64(v: u64) -> Self {
                Self { index: v as u32, generation: (v >> 32) as u32 }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}.{}"), self.index, self.generation)
            }
        }
    };
}

id_type!(
    /// A room on this SFU node.
    RoomId,
    "room"
);
id_type!(
    /// A participant (one peer connection) in a room, assigned by the core when the shell adds
    /// it; the shell maps its transport to this id.
    ParticipantId,
    "p"
);
id_type!(
    /// A published track (audio, camera or screen share) with all its simulcast layers.
    TrackId,
    "t"
);
id_type!(
    /// One subscriber's subscription to one track.
    SubscriptionId,
    "s"
);

impl TrackId {
    /// No track: an empty receive slot's track. Its index is past any slab, so it resolves to
    /// nothing.
    pub(crate) const NONE: TrackId = TrackId {
        index: u32::MAX,
        generation: u32::MAX,
    };
}
