//! Signaling service: rooms, auth, SDP relay and opaque key relay.
//!
//! Clients speak the JSON protocol of `docs/protocol.md` on the WebSocket `/v1/rtc`
//! ([`protocol`], [`session`]); tokens are HS256 JWTs ([`auth`]); rooms and their rules live in
//! [`room`], owned by one task each ([`hub`]); admins use `/v1/rooms` ([`admin_api`], described by
//! `openapi.json`); operators scrape `/metrics` ([`metrics`]). Media is handled by a node behind
//! the [`media_node::MediaNode`] trait; without one, SDP is answered with `media_unavailable`.
//! The service never holds a media key: it checks the shape of public bundles and key envelopes
//! and routes them by recipient.
//! When TURN servers are configured, `joined` carries time-limited TURN credentials
//! ([`turn_credentials`]) so that calls connect where UDP to the SFU is blocked.
//! Compliance recorders follow `GET /v1/recorder/events` ([`recorder_stream`]) to learn when a
//! room whose signed recording policy names them has people in it ([`recorded_rooms`]).

pub mod admin_api;
pub mod app_state;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod conn_limits;
pub mod hub;
pub mod listener;
pub mod media_node;
pub mod metrics;
pub mod policy;
pub mod policy_signing;
pub mod protocol;
pub mod recorded_rooms;
pub mod recorder_stream;
pub mod room;
pub mod server;
pub mod session;
pub mod test_hooks;
pub mod turn_credentials;
mod web_client;
