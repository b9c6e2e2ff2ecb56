//! The crate's integration tests, one binary (one link) for all of them: RFC vectors, bad input,
//! receiver rules, properties, verification and the cross-implementation check, each a module;
//! `fixtures` is the cross-implementation fixture format, shared with
//! `examples/cross_fixtures.rs`. The RFC vectors they read are in `../data/`.

mod fixtures;

mod bad_input;
mod chat;
mod cross_js;
mod emoji_sequence;
mod properties;
mod receiver_rules;
mod rfc9180_vectors;
mod rfc9605_vectors;
mod verification;
