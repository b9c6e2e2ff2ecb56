//! The datagrams a shard produces in one pass, written to its socket together: what the peers'
//! `rtc` sessions emit (ICE, DTLS, RTCP) and, above all, forwarded RTP.
//!
//! Forwarded RTP does not cross the `rtc` pipeline: [`Outbox`](super::Outbox) assembles each
//! copy in one reused buffer, the peer's SRTP context protects it into a datagram buffer taken
//! from the shard's [`DatagramPool`] (`RTCPeerConnection::protect_rtp_into`, a patch of the
//! vendored `rtc`), and the datagram waits here until the pass ends. Then [`send_all`] writes
//! them with `sendmmsg`: one system call for up to [`MAX_PER_CALL`] datagrams to as many
//! destinations, instead of one `sendto` each; the shard gives each written datagram's buffer
//! back to the pool.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::datagram_pool::DatagramPool;

/// Datagrams handed to one `sendmmsg` call (Linux accepts up to 1024).
pub(crate) const MAX_PER_CALL: usize = 128;

/// Datagrams waiting for the end of the pass, the buffer forwarded copies are assembled in, and
/// the buffers they are encrypted into.
#[derive(Default)]
pub(crate) struct SendBatch {
    pub(crate) datagrams: Vec<(SocketAddr, BytesMut)>,
    /// Reused buffer a forwarded packet's header and payload are joined in before SRTP.
    pub(crate) assembly: Vec<u8>,
    /// Buffers forwarded packets are SRTP-protected into; written datagrams' come back.
    pub(crate) pool: DatagramPool,
    /// Packets not sent because `rtc` chose a destination the peer never proved (counted into
    /// the shard's `send_unvalidated_destination`).
    pub(crate) unvalidated_destination: u64,
}

/// Writes `datagrams` in order, as many per system call as the kernel takes. Returns how many
/// were written from the front; the rest wait for the socket to become writable. Errors other
/// than a full send buffer concern one destination (e.g. an ICMP error reported on this call):
/// that datagram is skipped and counted as written, like a lost packet.
pub(crate) fn send_all(socket: &UdpSocket, datagrams: &[(SocketAddr, BytesMut)]) -> usize {
    let mut written = 0;
    while written < datagrams.len() {
        let end = datagrams.len().min(written + MAX_PER_CALL);
        match send_some(socket, &datagrams[written..end]) {
            Ok(n) => written += n.max(1).min(end - written),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => {
                tracing::trace!(%err, dest = %datagrams[written].0, "sendmmsg failed");
                written += 1;
            }
        }
    }
    written
}

/// One `sendmmsg` call; how many datagrams the kernel took.
fn send_some(socket: &UdpSocket, datagrams: &[(SocketAddr, BytesMut)]) -> io::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = datagrams
        .iter()
        .map(|(_, data)| [IoSlice::new(data)])
        .collect();
    let addresses: Vec<Option<SockaddrStorage>> = datagrams
        .iter()
        .map(|(dest, _)| Some(SockaddrStorage::from(*dest)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(datagrams.len(), None);
    let no_control: [ControlMessage<'_>; 0] = [];
    socket.try_io(Interest::WRITABLE, || {
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &slices,
            &addresses,
            no_control,
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More datagrams than one call takes, to three destinations: every one arrives, in the
    /// order written per destination.
    #[tokio::test]
    async fn writes_every_datagram_in_order_across_calls() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut receivers = Vec::new();
        for _ in 0..3 {
            let r = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            r.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            receivers.push(r);
        }
        let total = MAX_PER_CALL * 2 + 7;
        let datagrams: Vec<(SocketAddr, BytesMut)> = (0..total)
            .map(|i| {
                let dest = receivers[i % 3].local_addr().unwrap();
                let index = u32::try_from(i).unwrap();
                (dest, BytesMut::from(&index.to_be_bytes()[..]))
            })
            .collect();
        let mut written = 0;
        while written < total {
            written += send_all(&sender, &datagrams[written..]);
            if written < total {
                sender.writable().await.unwrap();
            }
        }
        for (r, receiver) in receivers.iter().enumerate() {
            let mut buf = [0u8; 16];
            let mut expected = (0..total).filter(|i| i % 3 == r);
            for want in expected.by_ref() {
                let n = receiver.recv(&mut buf).unwrap();
                assert_eq!(n, 4);
                let got = u32::from_be_bytes(buf[..4].try_into().unwrap());
                assert_eq!(got as usize, want, "destination {r}");
            }
        }
    }
}
