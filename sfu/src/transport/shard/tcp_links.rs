//! The shard's side of ICE-TCP: the links to open connections (one per remote address), the
//! frames they deliver, and the packets of this pass that go on them instead of the UDP socket.

use std::net::SocketAddr;

use rtc::shared::TransportProtocol;
use tracing::debug;

use super::ShardState;
use crate::transport::ice_tcp::{ConnectionId, IceTcpClose, TcpInput};
use crate::transport::media::MediaHandler;

impl<H: MediaHandler> ShardState<H> {
    pub(super) fn on_tcp_input(&mut self, input: TcpInput) {
        match input {
            TcpInput::Opened { remote, link } => {
                if let Some(stale) = self.tcp_links.insert(remote, link) {
                    // The same 4-tuple cannot be open twice; a link whose `Closed` is still on
                    // the way is ended for good.
                    stale.close(IceTcpClose::Shutdown);
                }
            }
            TcpInput::Frame {
                remote,
                connection,
                mut packet,
                read_at,
            } => {
                // A frame still in the channel when the shard closed its connection is dropped,
                // like a datagram from an address no peer proved.
                if self.is_open(remote, connection) {
                    self.stats.ice_tcp_frames_in += 1;
                    self.on_packet(remote, TransportProtocol::TCP, &mut packet, read_at);
                } else {
                    self.stats.unknown_source += 1;
                }
            }
            TcpInput::Closed {
                remote,
                connection,
                reason,
            } => {
                self.stats.ice_tcp_closed.count(reason);
                if self.is_open(remote, connection) {
                    self.tcp_links.remove(&remote);
                    self.unbind_tcp(remote);
                }
            }
        }
    }

    /// Whether the shard's link for `remote` is the one of `connection` (not a newer one).
    fn is_open(&self, remote: SocketAddr, connection: ConnectionId) -> bool {
        self.tcp_links
            .get(&remote)
            .is_some_and(|link| link.connection == connection)
    }

    /// Ends the connection from `remote` for `reason` (counted when its task reports back) and
    /// forgets its address, so nothing more is sent to it.
    pub(super) fn close_link(&mut self, remote: SocketAddr, reason: IceTcpClose) {
        if let Some(link) = self.tcp_links.remove(&remote) {
            debug!(%remote, reason = reason.label(), "closing ICE-TCP connection");
            link.close(reason);
            self.unbind_tcp(remote);
        }
    }

    /// The address of a connection that ended is no longer the peer's.
    fn unbind_tcp(&mut self, remote: SocketAddr) {
        if let Some(id) = self.by_addr.remove(&remote)
            && let Some(peer) = self.peers.get_mut(&id)
        {
            peer.addresses.retain(|a| *a != remote);
        }
    }

    /// Moves the packets of this pass addressed to an ICE-TCP connection onto it; the rest stay
    /// for the UDP socket. A connection whose queue is full is closed (`write_backlog`).
    pub(super) fn send_on_tcp_links(&mut self) {
        if self.tcp_links.is_empty() || self.batch.datagrams.is_empty() {
            return;
        }
        let links = &self.tcp_links;
        let mut backlogged: Vec<SocketAddr> = Vec::new();
        let mut sent = 0u64;
        self.batch.datagrams.retain_mut(|(dest, packet)| {
            let Some(link) = links.get(dest) else {
                return true;
            };
            if link.send(std::mem::take(packet)).is_ok() {
                sent += 1;
            } else if !backlogged.contains(dest) {
                backlogged.push(*dest);
            }
            false
        });
        self.stats.ice_tcp_frames_out += sent;
        for remote in backlogged {
            self.close_link(remote, IceTcpClose::WriteBacklog);
        }
    }
}
