//! Integration tests of `call-client`, one binary, one module per behaviour.

mod protocol_doc;
mod keys;
