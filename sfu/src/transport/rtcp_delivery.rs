//! The one `rtc` interceptor the shell installs (public: a test publisher installs it too, to see
//! the SFU's keyframe requests): it lets every inbound RTCP packet through to
//! the application (the forwarding core).
//!
//! `rtc` 0.21 ends its interceptor chain with a terminus (`NoopInterceptor`) that **drops all
//! inbound RTCP** unless some interceptor marked the packet with
//! [`Attribute::DeliverToApplication`] (`rtc-interceptor` `noop.rs`). An SFU runs none of `rtc`'s
//! interceptors (the forwarding core answers NACKs, forwards PLI/FIR, reads receiver reports and
//! transport-wide CC feedback itself), so without this mark the core would never see a
//! subscriber's feedback. Marking is per packet and cheap: one `Vec` push on the packet's
//! attribute list.

use std::collections::VecDeque;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where the interceptor sits: application-most, above every named slot (the jitter buffer is
/// the highest at 13 000), so any interceptor added later still sees RTCP before it is handed on.
pub const SLOT: usize = 20_000;

/// Marks inbound RTCP for delivery; passes everything else unchanged.
#[derive(Default)]
pub struct DeliverRtcp {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtcp(_))
            && !msg.message.has(&Attribute::DeliverToApplication)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for DeliverRtcp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
