//! The load test's integration tests, one binary (one link) for all of them: the impairment relay
//! on real sockets, and the real `loadtest` binary's CLI and scenarios, each a module.

mod common;

mod baseline_cli;
mod impairment_relay;
mod recorder_cost_cli;
mod report_merge;
mod scenarios_cli;
mod sfu_outage;
mod slot_room_cli;
mod two_generators;
mod viewer_engine;
