//! The SFU's forwarding core. Plain data structures driven by events with time passed in; it
//! owns no socket and reads no clock, so it is tested on virtual time.
//!
//! # Run loop (sans-IO, as in str0m and quinn-proto)
//!
//! The shell owns sockets, DTLS-SRTP and timers. It feeds the core:
//!
//! - [`Sfu::handle_rtp`] / [`Sfu::handle_rtcp`]: packets already SRTP/SRTCP-decrypted, with the
//!   [`ParticipantId`] of the peer connection they came from;
//! - [`Sfu::handle_timeout`] when [`Sfu::poll_timeout`] says so;
//! - commands: [`Sfu::create_room`], [`Sfu::add_participant`], [`Sfu::publish`],
//!   [`Sfu::subscribe`], [`Sfu::set_requested_size`], [`Sfu::set_pinned`], ...
//!
//! and then drains [`Sfu::poll_output`]: [`Transmit`]s to protect and send, and [`Event`]s.
//!
//! ```
//! use std::time::Instant;
//! use sfu_forwarding::{Config, Output, Role, RoomPolicy, Sfu, ExtensionIds};
//!
//! let now = Instant::now();
//! let mut sfu = Sfu::new(Config::default(), now, 0);
//! let room = sfu.create_room(RoomPolicy::meeting())?;
//! let alice = sfu.add_participant(room, Role::Caller, ExtensionIds::default())?;
//! sfu.handle_timeout(now);
//! while let Some(out) = sfu.poll_output() {
//!     match out {
//!         Output::Transmit(t) => { let _ = t.to(); /* encrypt and send */ }
//!         Output::Event(e) => { let _ = e; }
//!     }
//! }
//! # let _ = alice;
//! # Ok::<(), sfu_forwarding::Error>(())
//! ```
//!
//! # What the core reads
//!
//! Media is end-to-end encrypted (SFrame); the core never sees a key. It reads only the RTP
//! header, header extensions (mid, rid, repaired-rid, audio level, transport-wide sequence), the
//! VP8 payload descriptor, and the first byte of the frame's authenticated clear prefix (the VP8
//! frame tag, whose P bit tells a keyframe). It rewrites SSRC, payload type, sequence number,
//! timestamp, picture id and TL0PICIDX, and replaces the extension block with its own
//! (transport-wide sequence per subscriber, audio level, mid).
//!
//! # Hot path
//!
//! Each incoming packet is parsed once into a `MediaPacket` of copied header
//! fields plus a `Bytes` slice of the payload after the VP8 descriptor. Per subscriber only a
//! [`HeaderBuf`] (RTP header, extension block, rewritten descriptor: at most 64 bytes, on the
//! stack) is written; the payload is shared by reference count. Rooms, participants, tracks and
//! subscriptions live in generational slabs addressed by small copyable ids, so the fan-out loop
//! is a walk over a `Vec` of subscription ids with no hashing and no allocation.
//!
//! # Why the parsers are hand-written
//!
//! RTP, the RFC 8285 extensions, the RTCP subset, the transport-cc FCI and the VP8 descriptor are
//! parsed by small zero-copy parsers in this crate ([`rtp`], [`rtcp`], [`twcc`], [`vp8`]) rather
//! than with the `rtp`/`rtcp` crates of the webrtc-rs project, because: those crates parse into
//! owned structs (a `Vec` of extensions, a boxed `dyn Packet` per RTCP packet), which costs
//! allocations per packet on a path budgeted at 300 ns per forwarded packet; their writers
//! marshal a whole packet, while the core writes only a header in front of a shared payload;
//! they do not parse the VP8 descriptor in place or rewrite it; and the core must stay free of
//! any dependency on the `rtc`/`webrtc` stack the shell uses. Each parser is a few dozen lines,
//! returns typed errors, never indexes unchecked, and has a fuzz target (`sfu/fuzz`) and
//! 0..1500-byte length sweeps in the tests.
//!
//! # Policies
//!
//! - Layers: see [`Sfu::set_requested_size`] and [Bandwidth estimation](#bandwidth-estimation).
//!   A subscriber switches layer only at a keyframe of the new layer; the output stream stays
//!   continuous in sequence number, timestamp and picture id across switches.
//! - NACKs are answered from a per-source ring of the last
//!   [`Config::retransmit_buffer_packets`] packets no older than [`Config::retransmit_max_age`],
//!   each packet at most [`Config::retransmit_max_per_packet`] times per subscriber; on the RTX
//!   stream (RFC 4588) when the subscriber negotiated it.
//! - PLI/FIR from subscribers reach the publisher at most once per
//!   [`Config::keyframe_request_interval`] per source (5 per second by default).
//! - Active speakers: the RFC 6464 level of voice packets, averaged per
//!   [`Config::speaker_interval`] and smoothed; scores above [`Config::speaker_threshold`] speak.
//!   In rooms above [`RoomPolicy::loudest_n_threshold`] participants only the
//!   [`RoomPolicy::loudest_n`] loudest audio tracks are forwarded.
//! - Publishers get transport-wide CC feedback for their packets every
//!   [`Config::feedback_interval`], and NACKs for gaps in their video streams.
//! - Cameras: each subscriber receives the [`RoomPolicy::last_n`] most recent speakers' cameras
//!   plus pinned ones; screen shares always.
//! - Receive slots ([`Sfu::set_slot_layout`]): a subscriber with a fixed [`SlotLayout`] (from
//!   [`RoomPolicy::slot_counts`]) gets the loudest audio tracks, the pinned and last-N cameras
//!   and the screen shares on its slots, each slot one continuous stream; the core announces
//!   each new map as [`Event::SlotsChanged`]. Joins and leaves change maps, never layouts.
//!
//! # Bandwidth estimation
//!
//! One estimator per subscriber from its transport-wide CC feedback; the algorithm is described
//! on the (private) `bwe` module and summarised here: loss above 10 % multiplies the estimate by
//! `1 − loss/2`; a queuing delay (mean one-way delay above its 10 s minimum) above 60 ms caps it
//! at 85 % of the acknowledged rate; with loss below 2 % and queuing below 20 ms it grows by 8 %
//! per second. Layers are re-allocated every [`Config::allocation_interval`].

mod bwe;
mod core;
mod error;
mod feedback;
mod forward;
mod ids;
mod media_packet;
mod metrics;
mod output;
mod periodic;
mod policy;
pub mod recv_stats;
mod rewriter;
pub mod rtcp;
pub mod rtp;
mod rtx_buffer;
mod seq;
mod slab;
mod slots;
mod state;
pub mod twcc;
pub mod twcc_receiver;
pub mod vp8;

pub use crate::core::{Sfu, ntp_from_system_time};
pub use error::{Error, PacketError};
pub use ids::{ParticipantId, RoomId, SubscriptionId, TrackId};
pub use metrics::{ByKind, BySlotKind, Dropped, Feedback, Gauges, Metrics, ParticipantStats};
pub use output::{Direction, Event, Output, Transmit};
pub use policy::{
    Codec, Config, DownstreamParams, LayerSpec, MAX_BROADCAST_PRESENTERS, MAX_BROADCAST_VIEWERS,
    MAX_LAYERS, MAX_MEETING_CALLERS, MAX_TRACKS_PER_PARTICIPANT, MediaKind, Role, RoomKind,
    RoomPolicy, RtxParams, TrackKind, TrackSpec,
};
pub use rtp::{AudioLevel, ExtensionIds, HeaderBuf};
pub use slots::{
    DEFAULT_SCREEN_SLOTS, MAX_SLOTS_PER_KIND, SlotCounts, SlotKind, SlotLayout, SlotRef,
};
