//! Integration tests of `call-client`, one binary, one module per behaviour.

mod keys;
mod media;
mod protocol_doc;
mod recording_policy;
