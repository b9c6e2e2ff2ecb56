//! The SFU's forwarding core. Plain data structures driven by events with time passed in; it owns
//! no socket and reads no clock, so it is tested on virtual time.
