//! The signaling service's integration tests, one binary (one link of the WebRTC stack and the
//! embedded SFU) for all of them: each module is one behaviour of the real service over real
//! sockets (or the real `signaling` binary), `common` the shared server, clients and tokens.

mod common;

mod admin_api;
mod admin_api_strict;
mod cascade_broadcast;
mod chat_relay;
mod cli;
mod cli_serve_settings;
mod client_session;
mod connection_limits;
mod control_event_stream;
mod hands;
mod join_burst;
mod key_exchange_capture;
mod key_peer;
mod last_n_setting;
mod media_call;
mod media_state;
mod moderation;
mod node_offer_resend;
mod policy_cli;
mod publish_request;
mod receive_slots_room;
mod recorder_events;
mod recording_hold;
mod replicas;
mod resume;
mod rtc_admission;
mod rtc_flood;
mod rtc_limits;
mod rtc_session;
mod sfu_failover;
mod sfu_registry_placement;
mod sfu_restart;
mod shutdown;
mod stats_bounds;
mod turn_relay;
mod viewer_sdp;
mod web_client;
