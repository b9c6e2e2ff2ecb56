//! Caps on open TCP connections: one for the whole listener and one per client IP. A
//! [`ConnectionSlot`] is held for as long as its connection is open (a WebSocket session keeps
//! the slot of the connection it was upgraded from) and frees its place when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The open-connection counts and their caps (cheap to clone).
#[derive(Clone, Debug)]
pub struct ConnectionSlots {
    inner: Arc<SlotsInner>,
}

#[derive(Debug)]
struct SlotsInner {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The listener holds its most connections.
    Global,
    /// This client IP holds its most connections.
    PerIp,
}

impl SlotRefusal {
    /// The `reason` label it is counted under in `signaling_connection_drops_total`.
    pub fn reason(self) -> &'static str {
        match self {
            SlotRefusal::Global => "global_limit",
            SlotRefusal::PerIp => "per_ip_limit",
        }
    }
}

/// One open connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    inner: Arc<SlotsInner>,
    ip: IpAddr,
}

impl SlotsInner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The lock only guards counter arithmetic that cannot panic; a poisoned lock still
        // holds consistent counts.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnectionSlots {
    /// Caps of `max_total` connections in all and `max_per_ip` per client IP.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionSlots {
            inner: Arc::new(SlotsInner {
                max_total,
                max_per_ip,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// A place for one more connection from `ip`, unless a cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnectionSlot, SlotRefusal> {
        let mut counts = self.inner.counts();
        if counts.total >= self.inner.max_total {
            return Err(SlotRefusal::Global);
        }
        let of_ip = counts.per_ip.entry(ip).or_insert(0);
        if *of_ip >= self.inner.max_per_ip {
            return Err(SlotRefusal::PerIp);
        }
        *of_ip += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.counts().total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_in_all_and_frees_on_drop() {
        let slots = ConnectionSlots::new(3, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = slots.try_acquire(a).expect("first of a");
        let _a2 = slots.try_acquire(a).expect("second of a");
        assert_eq!(slots.try_acquire(a).err(), Some(SlotRefusal::PerIp));
        let _b1 = slots.try_acquire(b).expect("first of b");
        assert_eq!(slots.try_acquire(b).err(), Some(SlotRefusal::Global));
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _b2 = slots.try_acquire(b).expect("a freed place");
    }
}
