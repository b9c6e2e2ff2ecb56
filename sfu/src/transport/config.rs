//! What one transport shard is told at start: where it listens, what it advertises, whom it
//! answers and how long a silent peer may live.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::allow_list::SourceAllowList;
use super::ice_tcp::IceTcpConfig;

/// RFC 7675 consent freshness: a peer whose consent is not refreshed for this long is dropped and
/// its state freed. The project's requirement is "within 15 s".
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a newly added peer may take to complete ICE and DTLS before it is dropped.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Which DTLS role the SFU takes when it answers an offer whose `a=setup` is `actpass`.
///
/// Fingerprint verification runs in both roles; the choice only decides who sends the
/// ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsRole {
    /// The SFU answers `a=setup:passive` and waits for the client's ClientHello (the usual SFU
    /// choice: it saves one round trip for the client).
    #[default]
    Server,
    /// The SFU answers `a=setup:active` and sends the ClientHello itself.
    Client,
}

/// Configuration of one transport shard (one UDP socket, many peer connections).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Address the UDP socket binds. Its port is the port advertised in candidates (`0` picks a
    /// free one, which tests use).
    pub bind: SocketAddr,
    /// The only address advertised as a host candidate, and the local address the ICE agent is
    /// told packets arrive on. `127.0.0.1` in tests and the development default.
    pub advertised_ip: IpAddr,
    /// Source networks the shard answers; datagrams from anywhere else are dropped unread and
    /// counted as `source_not_allowed`.
    pub allowed_sources: SourceAllowList,
    /// RFC 7675 consent lifetime: a connected peer without an authenticated STUN binding request
    /// for this long is dropped.
    pub consent_timeout: Duration,
    /// How long a new peer may take to connect (ICE and DTLS) before it is dropped.
    pub connect_timeout: Duration,
    /// DTLS role taken when the offer leaves the choice to the SFU.
    pub dtls_role: DtlsRole,
    /// Upper bound on peer connections in this shard; `AddPeer` beyond it is refused.
    pub max_peers: usize,
    /// Upper bound on datagrams waiting for socket buffer space; beyond it they are dropped and
    /// counted (a slow socket never blocks the shard).
    pub max_pending_datagrams: usize,
    /// `SO_RCVBUF` of the UDP socket in bytes (the kernel doubles it and caps it at
    /// `net.core.rmem_max`); `None` keeps the system default. What does not fit is dropped by
    /// the kernel and exported as `sfu_udp_receive_buffer_drops_total`.
    pub receive_buffer_bytes: Option<usize>,
    /// The ICE-TCP listener (RFC 6544, passive) beside the UDP socket, on the same address;
    /// `None` (the default) leaves it off.
    pub ice_tcp: Option<IceTcpConfig>,
}

impl TransportConfig {
    /// The development and test default: bind and advertise `127.0.0.1` on a free port, answer
    /// only `127.0.0.0/8`, 15 s consent.
    pub fn loopback() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertised_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            allowed_sources: SourceAllowList::new(vec![IpNet::V4(
                // The literal is a valid /8 network, so this cannot fail.
                "127.0.0.0/8"
                    .parse()
                    .expect("valid loopback network literal"),
            )]),
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            dtls_role: DtlsRole::Server,
            max_peers: 4096,
            max_pending_datagrams: 8192,
            receive_buffer_bytes: None,
            ice_tcp: None,
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self::loopback()
    }
}
