//! The bounded retransmission buffer of one source: the last N packets by sequence number, each
//! served only while younger than a maximum age. Bounded by count (a ring indexed by sequence
//! number) and by age, so memory per source is fixed and stale packets are never resent.

use std::time::{Duration, Instant};

use crate::media_packet::MediaPacket;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RtxBuffer {
    slots: Vec<Option<MediaPacket>>,
    capacity: usize,
}

impl RtxBuffer {
    /// A buffer of `capacity` packets (rounded up to a power of two, at least 16); memory is
    /// taken on the first insert.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            capacity: capacity.clamp(16, 1 << 15).next_power_of_two(),
        }
    }

    pub(crate) fn insert(&mut self, packet: &MediaPacket) {
        if self.slots.is_empty() {
            self.slots.resize(self.capacity, None);
        }
        let i = usize::from(packet.seq) & (self.capacity - 1);
        self.slots[i] = Some(packet.clone());
    }

    /// The packet with sequence number `seq`, if still held and not older than `max_age`.
    pub(crate) fn get(&self, seq: u16, now: Instant, max_age: Duration) -> Option<&MediaPacket> {
        let slot = self.slots.get(usize::from(seq) & (self.capacity - 1))?;
        slot.as_ref()
            .filter(|p| p.seq == seq && now.saturating_duration_since(p.arrival) <= max_age)
    }
}
