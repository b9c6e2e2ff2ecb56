//! End-to-end media encryption: SFrame (RFC 9605), HPKE key envelopes (RFC 9180) and identity
//! verification. Pure logic, no I/O.

pub mod aead;
pub mod header;
pub mod key;
pub mod kid;
pub mod media;
pub mod sender;
pub mod suite;

pub use header::{Header, HeaderError};
pub use key::{BaseKey, SframeError, SframeKey};
pub use kid::{Kid, KidError, Stream};
pub use suite::{CipherSuite, UnknownSuite};
pub use media::{Codec, FrameKind, clear_prefix_len};
pub use sender::{SendError, Sender};
