//! Datagrams read from a shard's UDP socket, each with the time the kernel received it.
//!
//! The arrival time of a datagram is what the transport-wide CC feedback reports to its sender,
//! whose bandwidth estimator reads the receive rate of a probe burst from the spacing of those
//! times. The time the shard *reads* a datagram is not its arrival: a shard busy with other work
//! (or waiting for a CPU) reads a burst late, in one batch, and read times then show a rate the
//! link never had. So the socket is asked for kernel receive timestamps (`SO_TIMESTAMPNS`,
//! `CLOCK_REALTIME`), every datagram is read with `recvmsg` and its control message, and
//! [`ArrivalClock`] maps the timestamp onto the `Instant` clock the shard runs on. A datagram
//! that comes without a timestamp (another OS, or the option refused) keeps its read time and is
//! counted ([`UdpReceiver::without_kernel_time`]).
//!
//! One control-message buffer is allocated per shard; reading allocates nothing per datagram.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;

/// Maps kernel receive times (wall clock, `CLOCK_REALTIME`) onto the shard's monotonic clock.
///
/// Both clocks are read together once per batch ([`ArrivalClock::start_batch`]); a timestamp's
/// distance from that wall-clock reading is applied to that `Instant`. The result is never later
/// than the time it is computed (a datagram cannot arrive after it is read) and never before the
/// previous datagram's (the feedback's arrival times only move forward, whatever the wall clock
/// does between two batches).
#[derive(Debug)]
pub(crate) struct ArrivalClock {
    /// The wall clock's time since the Unix epoch, and the `Instant` read beside it.
    wall: Duration,
    mono: Instant,
    /// The arrival time given to the last datagram.
    previous: Option<Instant>,
}

impl ArrivalClock {
    /// A clock paired at `wall` / `mono`.
    pub(crate) fn new(wall: SystemTime, mono: Instant) -> Self {
        let mut clock = Self {
            wall: Duration::ZERO,
            mono,
            previous: None,
        };
        clock.start_batch(wall, mono);
        clock
    }

    /// Pairs the two clocks again: `wall` and `mono` read at (nearly) the same moment.
    pub(crate) fn start_batch(&mut self, wall: SystemTime, mono: Instant) {
        // A wall clock before 1970 pairs as the epoch: timestamps then map to `mono` or earlier,
        // and the clamps below keep them in order.
        self.wall = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.mono = mono;
    }

    /// The shard-clock arrival of a datagram the kernel stamped `received` (since the Unix
    /// epoch), read at `read_at` (asked for only when the timestamp is later than the pairing).
    pub(crate) fn arrival(
        &mut self,
        received: Duration,
        read_at: impl FnOnce() -> Instant,
    ) -> Instant {
        let mapped = if received <= self.wall {
            // Received before the pairing, as nearly every datagram of a batch is. A timestamp
            // older than the `Instant` clock can express maps to the previous arrival (below).
            self.mono
                .checked_sub(self.wall - received)
                .unwrap_or_else(|| self.previous.unwrap_or(self.mono))
        } else {
            // Received during the batch, after the pairing; not after it was read.
            let now = read_at();
            self.mono
                .checked_add(received - self.wall)
                .map_or(now, |t| t.min(now))
        };
        self.in_order(mapped)
    }

    /// The arrival of a datagram without a kernel timestamp: its read time, kept in order.
    pub(crate) fn read_time(&mut self, read_at: Instant) -> Instant {
        self.in_order(read_at)
    }

    fn in_order(&mut self, at: Instant) -> Instant {
        let at = self.previous.map_or(at, |previous| at.max(previous));
        self.previous = Some(at);
        at
    }
}

/// Widest gap between the two `Instant` readings around the wall-clock reading of a pairing.
const PAIRING_SLACK: Duration = Duration::from_micros(20);
/// Pairings tried again at most when one is wider than [`PAIRING_SLACK`].
const PAIRING_TRIES: usize = 3;

/// The wall clock, the `Instant` halfway between the readings around it, and their gap.
fn clock_pair() -> (SystemTime, Instant, Duration) {
    let before = Instant::now();
    let wall = SystemTime::now();
    let after = Instant::now();
    let gap = after - before;
    (wall, before + gap / 2, gap)
}

/// One datagram read: its length in the caller's buffer, its source and its arrival time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) src: SocketAddr,
    pub(crate) arrival: Instant,
}

/// Reads a shard's socket, each datagram with its kernel receive time (see the module docs).
#[derive(Debug)]
pub(crate) struct UdpReceiver {
    clock: ArrivalClock,
    /// Room for the one control message asked for (a `timespec`), reused for every read.
    #[cfg(target_os = "linux")]
    control: Vec<u8>,
    /// Datagrams that came without a kernel receive time: their read time stands in.
    pub(crate) without_kernel_time: u64,
}

impl UdpReceiver {
    /// Asks the kernel to stamp every datagram `socket` receives. Where it refuses (or is not
    /// Linux) the shard still runs; each datagram then keeps its read time and is counted.
    pub(crate) fn new(socket: &UdpSocket) -> Self {
        #[cfg(target_os = "linux")]
        if let Err(err) = nix::sys::socket::setsockopt(
            socket,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        ) {
            tracing::warn!(%err, "SO_TIMESTAMPNS refused: arrival times are read times");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = socket;
        Self {
            clock: ArrivalClock::new(SystemTime::now(), Instant::now()),
            #[cfg(target_os = "linux")]
            control: nix::cmsg_space!(nix::sys::time::TimeSpec),
            without_kernel_time: 0,
        }
    }

    /// Starts a batch of reads (pairs the wall clock with the shard's clock once for all of
    /// them). The wall clock is read between two readings of the shard's clock; a pairing the
    /// thread was preempted in (the two further apart than [`PAIRING_SLACK`]) would shift the
    /// whole batch's arrivals, so it is taken again, a few times at most.
    pub(crate) fn start_batch(&mut self) {
        let mut pairing = clock_pair();
        for _ in 0..PAIRING_TRIES {
            if pairing.2 <= PAIRING_SLACK {
                break;
            }
            pairing = clock_pair();
        }
        self.clock.start_batch(pairing.0, pairing.1);
    }

    /// Reads one queued datagram into `buf` without waiting; `WouldBlock` when none is queued
    /// (and the socket's readiness is cleared, as with tokio's own `try_recv_from`).
    pub(crate) fn try_recv(&mut self, socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
        let (len, src, kernel_time) = self.recv_stamped(socket, buf)?;
        let arrival = match kernel_time {
            Some(received) => self.clock.arrival(received, Instant::now),
            None => {
                self.without_kernel_time += 1;
                self.clock.read_time(Instant::now())
            }
        };
        Ok(Received { len, src, arrival })
    }

    #[cfg(target_os = "linux")]
    fn recv_stamped(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<Duration>)> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{
            ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg,
        };
        use tokio::io::Interest;

        let control = &mut self.control;
        socket.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(buf)];
            let message = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(control.as_mut_slice()),
                MsgFlags::empty(),
            )
            .map_err(io::Error::from)?;
            let src = message
                .address
                .as_ref()
                .and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| SocketAddr::from(*v4))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
                })
                .ok_or_else(|| {
                    let family = message.address.as_ref().and_then(SockaddrLike::family);
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("datagram from no IP address ({family:?})"),
                    )
                })?;
            // A truncated control buffer (not expected: it fits the one message asked for)
            // reads as no timestamp.
            let kernel_time = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        let secs = u64::try_from(ts.tv_sec()).ok()?;
                        let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                        (nanos < 1_000_000_000).then(|| Duration::new(secs, nanos))
                    }
                    _ => None,
                })
            });
            Ok((message.bytes, src, kernel_time))
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_stamped(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<Duration>)> {
        let (len, src) = socket.try_recv_from(buf)?;
        Ok((len, src, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A clock paired at a wall time of 1,000,000 s since the epoch and a fixed instant.
    fn paired() -> (ArrivalClock, Duration, Instant) {
        let wall = Duration::from_secs(1_000_000);
        let mono = Instant::now();
        (
            ArrivalClock::new(SystemTime::UNIX_EPOCH + wall, mono),
            wall,
            mono,
        )
    }

    #[test]
    fn kernel_receive_time_maps_to_the_shard_clock() {
        let (mut clock, wall, mono) = paired();
        let late = |_: ()| -> Instant { panic!("not asked for a timestamp before the pairing") };
        // A burst received 30, 20 and 10 ms before the pairing keeps its spacing.
        let a = clock.arrival(wall - 30 * MS, || late(()));
        let b = clock.arrival(wall - 20 * MS, || late(()));
        let c = clock.arrival(wall - 10 * MS, || late(()));
        assert_eq!(mono - a, 30 * MS);
        assert_eq!(b - a, 10 * MS);
        assert_eq!(c - b, 10 * MS);
    }

    #[test]
    fn a_timestamp_after_the_pairing_is_not_later_than_its_read() {
        let (mut clock, wall, mono) = paired();
        // Received 2 ms after the pairing, read 5 ms after it: 2 ms after the pairing.
        assert_eq!(
            clock.arrival(wall + 2 * MS, || mono + 5 * MS),
            mono + 2 * MS
        );
        // Stamped 9 ms after the pairing (the wall clock stepped forward) but read at 6 ms: the
        // read time.
        assert_eq!(
            clock.arrival(wall + 9 * MS, || mono + 6 * MS),
            mono + 6 * MS
        );
    }

    #[test]
    fn arrivals_never_go_back() {
        let (mut clock, wall, mono) = paired();
        let first = clock.arrival(wall - 5 * MS, Instant::now);
        // Stamped before the previous datagram (a wall-clock step back, or another CPU's
        // stamp): the previous arrival.
        assert_eq!(clock.arrival(wall - 8 * MS, Instant::now), first);
        // Older than the `Instant` clock can express: still the previous arrival.
        assert_eq!(clock.arrival(Duration::ZERO, Instant::now), first);
        // A read time before the last arrival stays in order too.
        assert_eq!(clock.read_time(mono - 10 * MS), first);
        // A new pairing later on: arrivals continue from it.
        clock.start_batch(SystemTime::UNIX_EPOCH + wall + 100 * MS, mono + 100 * MS);
        assert_eq!(clock.arrival(wall + 99 * MS, Instant::now), mono + 99 * MS);
    }

    /// A real socket: datagrams sent with a pause between them and read together later keep the
    /// pause between their arrival times, and none comes without a timestamp.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn datagrams_read_together_keep_their_kernel_spacing() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
        let target = socket.local_addr().expect("local address");
        let mut receiver = UdpReceiver::new(&socket);
        // The first socket on a host to ask for stamps turns stamping on for the whole host
        // through deferred kernel work; until then a datagram is stamped when it is read.
        std::thread::sleep(50 * MS);
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        sender.send_to(b"first", target).expect("sent");
        std::thread::sleep(20 * MS);
        // On loopback the kernel stamps a datagram inside the sender's `send_to`.
        let before_send = Instant::now();
        sender.send_to(b"second", target).expect("sent");
        let after_send = Instant::now();
        std::thread::sleep(30 * MS);
        socket.readable().await.expect("readable");
        receiver.start_batch();
        let mut buf = [0u8; 64];
        let first = receiver.try_recv(&socket, &mut buf).expect("first read");
        assert_eq!(&buf[..first.len], b"first");
        let second = receiver.try_recv(&socket, &mut buf).expect("second read");
        assert_eq!(&buf[..second.len], b"second");
        assert_eq!(second.src, sender.local_addr().expect("sender address"));
        assert_eq!(receiver.without_kernel_time, 0);
        let gap = second.arrival - first.arrival;
        assert!(gap >= 20 * MS, "the pause is kept: {gap:?}");
        // The two clocks are paired by two reads in a row: allow a little between them.
        assert!(
            second.arrival + 2 * MS >= before_send && second.arrival <= after_send + 2 * MS,
            "the second arrival is its receive, not its read (sent {:?} before the read)",
            Instant::now() - after_send
        );
        let err = receiver
            .try_recv(&socket, &mut buf)
            .expect_err("nothing more is queued");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
