//! The forwarding core's integration tests, one binary (one link) for all of them: each module
//! is one behaviour of the core on virtual time, `common` the shared harness.
//!
//! Proptest keeps the seeds of past failures in `../proptest-regressions/<module>.txt` (its place
//! for a test tree rooted at a `main.rs`); check them in.

mod common;

mod admission_and_roles;
mod keyframe_request_throttle;
mod layer_switching;
mod malformed_packet_injection;
mod nack_retransmission;
mod padding_only_layers;
mod receive_slots;
mod rid_simulcast;
mod rtcp_reports;
mod speakers_and_last_n;
mod transport_cc_arrivals;
