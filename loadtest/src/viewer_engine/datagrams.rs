//! Datagrams in and out of one viewer's socket, several per system call: `recvmmsg` reads
//! what is queued (up to [`RECV_BATCH`]) in one call, `sendmmsg` writes what a pass produced.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, SockaddrStorage, recvmmsg, sendmmsg,
};

/// Datagrams read by one `recvmmsg` call.
pub(crate) const RECV_BATCH: usize = 32;

/// Largest datagram read (RTP is at most ~1250 bytes; DTLS flights fit too).
const DATAGRAM_MAX: usize = 2048;

/// A worker's reusable receive buffers and headers.
pub(crate) struct RecvBatch {
    buffers: [Vec<u8>; RECV_BATCH],
    headers: MultiHeaders<SockaddrStorage>,
    /// Length and source of each datagram of the last call.
    pub(crate) received: Vec<(usize, SocketAddr)>,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            buffers: std::array::from_fn(|_| vec![0u8; DATAGRAM_MAX]),
            headers: MultiHeaders::preallocate(RECV_BATCH, None),
            received: Vec::with_capacity(RECV_BATCH),
        }
    }

    /// Reads what is queued on `socket`, up to [`RECV_BATCH`] datagrams, without blocking.
    /// Returns how many were read (0 when none was queued).
    pub(crate) fn read(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        // On the stack: this runs once per ready socket per pass.
        let mut buffers = self.buffers.iter_mut();
        let mut slices: [[IoSliceMut<'_>; 1]; RECV_BATCH] = std::array::from_fn(|_| {
            let buffer = buffers.next().map_or(&mut [][..], |b| &mut b[..]);
            [IoSliceMut::new(buffer)]
        });
        let results = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => results,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for r in results {
            let source = r
                .address
                .as_ref()
                .and_then(SockaddrStorage::as_sockaddr_in)
                .map(|a: &SockaddrIn| SocketAddr::V4((*a).into()));
            if let Some(source) = source {
                self.received.push((r.bytes, source));
            }
        }
        Ok(self.received.len())
    }

    /// The bytes of datagram `i` of the last [`RecvBatch::read`].
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        let (len, _) = self.received[i];
        &self.buffers[i][..len]
    }

    /// Datagram `i` of the last [`RecvBatch::read`], to be decrypted where it lies.
    pub(crate) fn datagram_mut(&mut self, i: usize) -> &mut [u8] {
        let (len, _) = self.received[i];
        &mut self.buffers[i][..len]
    }
}

/// Writes `datagrams` from `socket`, as many per call as the kernel takes. A datagram the
/// kernel refuses (full buffer, ICMP error) is dropped like a lost packet: what a viewer sends
/// (ICE checks, DTLS, RTCP) is retransmitted by its protocol. Returns the datagrams dropped.
pub(super) fn send_all(socket: &UdpSocket, datagrams: &[(SocketAddr, BytesMut)]) -> u64 {
    let mut dropped = 0;
    let mut written = 0;
    while written < datagrams.len() {
        match send_some(socket, &datagrams[written..]) {
            Ok(n) => written += n.max(1),
            Err(_) => {
                dropped += 1;
                written += 1;
            }
        }
    }
    dropped
}

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
    let sent = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addresses,
        no_control,
        MsgFlags::MSG_DONTWAIT,
    )?;
    Ok(sent.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_every_queued_datagram_with_its_source_and_sends_go_out_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to_b = b.local_addr().unwrap();
        let datagrams: Vec<(SocketAddr, BytesMut)> = (0..40u8)
            .map(|i| (to_b, BytesMut::from(&[i, i, i][..])))
            .collect();
        assert_eq!(send_all(&a, &datagrams), 0);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            let n = batch.read(&b).unwrap();
            assert!(n <= RECV_BATCH);
            for i in 0..n {
                assert_eq!(batch.received[i].1, a.local_addr().unwrap());
                got.push(batch.datagram(i).to_vec());
            }
        }
        let want: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i, i, i]).collect();
        assert_eq!(got, want);
        assert_eq!(batch.read(&b).unwrap(), 0, "nothing left: no blocking");
    }
}
