//! Integration tests of `call-client`, one module per behaviour.

mod keys;
