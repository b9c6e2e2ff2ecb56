//! The SFU's integration tests, one binary (one link of the WebRTC stack) for all of them: each
//! module is one behaviour of the transport or the node against real `webrtc` peers on
//! loopback (or the real `sfu` binary), `common` the shared peers, relay and STUN helpers.

mod common;

mod aiortc_viewer;
mod broadcast_50_viewers;
mod control_api_malformed_input;
mod control_api_tls;
mod debug_logs_no_credentials;
mod dtls_fingerprint_mismatch;
mod garbage_datagrams;
mod ice_tcp_framing_garbage;
mod ice_tcp_limits;
mod ice_tcp_native_peer;
mod ice_tcp_stun_timeout;
mod idle_sections;
mod idle_tcp_connections;
mod kernel_receive_drops;
mod kernel_receive_times;
mod malformed_media_from_authenticated_peer;
mod media_session_replaced;
mod meeting_20_callers;
mod node_control;
mod node_forwarding;
mod node_simulcast;
mod offer_glare;
mod pli_flood_from_one_subscriber;
mod publish_request_refusals;
mod publish_subscribe;
mod publisher_gone;
mod receive_slots_join;
mod registry_heartbeat;
mod relay_cascade;
mod renegotiation;
mod shard_jobs;
mod short_receive_path;
mod sigterm_drain;
mod silent_peer_freed;
mod slow_link_layer_adaptation;
mod source_outside_allow_list;
mod srtp_replay;
mod stun_bad_integrity;
mod stun_unknown_username;
mod unconnected_peer_freed;
mod viewer_direction;
