//! Impaired links for tests and load runs: loss, delay, jitter, reordering and a bandwidth cap
//! on a UDP relay between clients and a server on loopback (the kernel here has no netem).
//!
//! Other crates' tests use it to put a bad link between a client and the SFU:
//!
//! ```no_run
//! use loadtest::impairment::{Impairment, ImpairmentRelay, RelayConfig};
//! # fn sfu_udp_addr() -> std::net::SocketAddr { "127.0.0.1:5000".parse().unwrap() }
//! let link: Impairment = "loss=5%,delay=40ms,jitter=10ms".parse().unwrap();
//! let relay = ImpairmentRelay::start(RelayConfig::symmetric(sfu_udp_addr(), link)).unwrap();
//! // Point the client at relay.local_addr() instead of the SFU, run the test, then:
//! let stats = relay.stop();
//! assert!(stats.to_server.dropped_loss > 0);
//! ```

mod relay;
mod spec;

pub use relay::{DirectionStats, ImpairmentRelay, RelayConfig, RelayError, RelayStats};
pub use spec::{Impairment, ImpairmentParseError};
