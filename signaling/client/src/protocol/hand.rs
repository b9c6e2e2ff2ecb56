//! Raised hands (`hand`, both directions): a device raises or lowers its own hand; the service
//! stamps the sender's device and the hand's place in the room's queue, relays it to the sender
//! and to whoever sees the sender, and keeps the raised hands for `joined.hands`. A moderator
//! lowers someone else's hand with the `lower_hand` action of `moderate`; a hand goes with its
//! device when the device leaves.

use serde::{Deserialize, Serialize};

/// `hand` messages accepted back to back; then [`HAND_PER_SECOND`].
pub const HAND_BURST: u32 = 5;

/// Sustained `hand` messages per second per connection (one per button press).
pub const HAND_PER_SECOND: u32 = 2;

/// Body of the client's `hand`: this device's hand goes up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hand {
    /// Raised (`true`) or lowered.
    pub raised: bool,
}

/// Body of the server's `hand`: a device's hand went up or down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHand {
    /// The device, as the service authenticated it (never taken from the client).
    pub device: String,
    /// Raised or lowered.
    pub raised: bool,
    /// A raised hand's place in the room's queue: the room counts raised hands, so a smaller
    /// `order` went up earlier (left out when lowered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    /// The moderator's device, when a moderator lowered the hand (left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowered_by: Option<String>,
}

/// One raised hand of `joined.hands`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisedHand {
    /// The device whose hand is up.
    pub device: String,
    /// Its place in the room's queue (see [`DeviceHand::order`]).
    pub order: u64,
}
