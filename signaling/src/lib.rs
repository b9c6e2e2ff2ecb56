//! Signaling service: rooms, auth, SDP relay and opaque key relay.
