//! The shard's buffers for outgoing datagrams: each forwarded RTP copy is SRTP-protected into a
//! buffer taken from here (`RTCPeerConnection::protect_rtp_into`, a patch of the vendored
//! `rtc`), and the buffer comes back once `sendmmsg` has written it, so a shard that forwards
//! steadily allocates nothing per packet.
//!
//! One owner, the shard task (it sits in the shard's [`SendBatch`](super::send_batch::SendBatch));
//! no lock. Bounded: at most [`MAX_FREE`] buffers are kept, each of at least
//! [`BUFFER_CAPACITY`] and at most [`MAX_KEPT_CAPACITY`] bytes; a buffer beyond that is freed
//! when it comes back. A buffer taken while none is free is allocated and counted
//! ([`DatagramPool::allocated`], `sfu_send_buffers_allocated_total`): after the first passes
//! that count stands still unless more datagrams wait at once than the pool keeps (or leave by
//! ICE-TCP, whose frames keep their buffer).

use bytes::BytesMut;

/// Capacity of a new buffer: an Ethernet MTU, more than any forwarded packet with its SRTP tag
/// (clients send RTP of at most about 1200 bytes). A larger packet grows its buffer.
pub(crate) const BUFFER_CAPACITY: usize = 1500;

/// Largest buffer kept when it comes back (datagrams `rtc` made, DTLS flights, may be larger).
pub(crate) const MAX_KEPT_CAPACITY: usize = 2 * BUFFER_CAPACITY;

/// Free buffers kept at most: eight `sendmmsg` calls' worth, 1.5 to 3 MB per shard.
pub(crate) const MAX_FREE: usize = 1024;

/// Free datagram buffers, and how many were allocated because none was free.
#[derive(Debug, Default)]
pub(crate) struct DatagramPool {
    free: Vec<BytesMut>,
    allocated: u64,
}

impl DatagramPool {
    /// An empty buffer: a free one, else a new one (counted).
    pub(crate) fn take(&mut self) -> BytesMut {
        self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            BytesMut::with_capacity(BUFFER_CAPACITY)
        })
    }

    /// A buffer whose datagram was written (or is not needed): kept for the next [`take`] if
    /// the pool has room and its capacity is of the kind kept, otherwise freed.
    ///
    /// [`take`]: DatagramPool::take
    pub(crate) fn give_back(&mut self, mut buffer: BytesMut) {
        let capacity = buffer.capacity();
        if self.free.len() < MAX_FREE && (BUFFER_CAPACITY..=MAX_KEPT_CAPACITY).contains(&capacity) {
            buffer.clear();
            self.free.push(buffer);
        }
    }

    /// Buffers allocated because the pool had none free, since the shard started.
    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Buffers free now.
    pub(crate) fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer given back is the next one taken (its allocation reused, its content gone);
    /// only takes from an empty pool count as allocations.
    #[test]
    fn a_buffer_given_back_is_taken_again_without_an_allocation() {
        let mut pool = DatagramPool::default();
        let mut first = pool.take();
        assert_eq!(pool.allocated(), 1);
        first.extend_from_slice(b"forwarded packet");
        let address = first.as_ptr();
        pool.give_back(first);
        assert_eq!(pool.free(), 1);

        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same allocation");
        assert!(again.is_empty());
        assert!(again.capacity() >= BUFFER_CAPACITY);
        assert_eq!(pool.allocated(), 1, "no new allocation");
        let _second = pool.take();
        assert_eq!(pool.allocated(), 2, "an empty pool allocates");
    }

    /// The pool keeps at most `MAX_FREE` buffers, and none too small or too large to be worth
    /// keeping.
    #[test]
    fn the_pool_keeps_at_most_max_free_buffers_of_the_kept_sizes() {
        let mut pool = DatagramPool::default();
        let taken: Vec<BytesMut> = (0..MAX_FREE + 10).map(|_| pool.take()).collect();
        assert_eq!(pool.allocated(), (MAX_FREE + 10) as u64);
        for buffer in taken {
            pool.give_back(buffer);
        }
        assert_eq!(pool.free(), MAX_FREE);

        let mut small = DatagramPool::default();
        small.give_back(BytesMut::with_capacity(64));
        small.give_back(BytesMut::with_capacity(MAX_KEPT_CAPACITY + 1));
        assert_eq!(small.free(), 0);
    }
}
