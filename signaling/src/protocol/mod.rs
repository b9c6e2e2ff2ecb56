//! The client protocol on `/v1/rtc` as the service uses it: the message types are
//! `call_client::protocol`'s (one definition, shared with every native client; see that module
//! and `docs/protocol.md`), re-exported here so paths stay `protocol::Name`. What is server
//! policy rather than protocol lives here: `sdp_send_check` judges whether an SDP lets a device
//! send media (a viewer's must not), and `reject_reason` maps each error code to the `reason`
//! label of `signaling_rejected_total`.

mod reject_reason;
mod sdp_send_check;

pub use call_client::protocol::*;
pub use reject_reason::*;
pub use sdp_send_check::*;
