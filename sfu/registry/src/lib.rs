//! The SFU node registry, kept in Redis.
//!
//! Every `sfu` process started with `--redis-url` publishes its [`NodeRecord`] once a second:
//! where signaling reaches its control API, how loaded it is (participants, rooms, forwarded
//! packets per second, CPU), its per-node capacity and whether it drains. Each record is
//! written with a lease (a Redis key with a time to live, three heartbeats by default), so a
//! node that dies (`kill -9`, a lost host) disappears from the registry by itself within the
//! lease; a node that stops cleanly withdraws its record at once. Signaling reads the live
//! records ([`Registry::live_nodes`]) to place rooms and to notice a lost node.
//!
//! Keys (prefix `e2ee` by default, [`KeySpace`]):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:node:<node id>` | string, expires | the node's [`NodeRecord`] as JSON |
//! | `<prefix>:nodes` | set | the ids of nodes that published; an id whose record expired is removed by the next reader |
//!
//! Nothing here compares clocks across hosts: a record is live exactly while Redis still holds
//! its key. Both ends use this crate, so the record and the key layout are defined once.
//!
//! | file | job |
//! |---|---|
//! | `record.rs` | [`NodeRecord`], the key names |
//! | `client.rs` | [`Registry`]: publish, withdraw, read the live nodes |
//! | `test_server.rs` | [`RedisServer`] (feature `test-server`): a real `redis-server` for tests |

mod client;
mod record;
#[cfg(feature = "test-server")]
mod test_server;

pub use client::{LiveNodes, Registry, RegistryConfig, RegistryError};
pub use record::{KeySpace, NodeRecord};
#[cfg(feature = "test-server")]
pub use test_server::RedisServer;
