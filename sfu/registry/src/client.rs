//! [`Registry`]: the Redis side of the node registry.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::record::{KeySpace, NodeRecord};

/// How a [`Registry`] talks to Redis.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Key names (prefix).
    pub keys: KeySpace,
    /// How long a published record lives without the next heartbeat (three heartbeats by
    /// default): a node that died is gone from the registry after at most this long.
    pub lease: Duration,
    /// Longest wait for Redis to connect or answer one command; a Redis that does not answer
    /// is an error, never a stall of the caller.
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            keys: KeySpace::default(),
            lease: Duration::from_secs(3),
            timeout: Duration::from_millis(500),
        }
    }
}

/// Why a registry call failed. The Redis URL is never part of a message (it may hold a
/// password).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The Redis URL does not parse.
    #[error("Redis URL: {0}")]
    Url(String),
    /// Redis could not be reached, or did not answer in time, or refused the command.
    #[error("Redis: {0}")]
    Redis(String),
    /// A record could not be written as JSON.
    #[error("node record: {0}")]
    Encode(String),
}

impl From<redis::RedisError> for RegistryError {
    fn from(e: redis::RedisError) -> Self {
        // `RedisError`'s text names the command and the server's answer, not the URL.
        RegistryError::Redis(e.to_string())
    }
}

/// The records of the live nodes, as read once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveNodes {
    /// Every live node's record, sorted by node id.
    pub records: Vec<NodeRecord>,
    /// Records that were present but did not parse (skipped; a reader counts them).
    pub unreadable: usize,
}

/// A connection to the registry. Cheap to share behind an `Arc`; calls may run concurrently.
/// Connecting is lazy: [`Registry::new`] does no I/O, the first call connects, and a call after
/// Redis came back reconnects, so a process never fails to start because Redis is away.
pub struct Registry {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    config: RegistryConfig,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("Registry")
            .field("keys", &self.config.keys)
            .field("lease", &self.config.lease)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry at `url` (`redis://host:port/db`, `redis://:password@host`). Parses the URL
    /// only.
    pub fn new(url: &str, config: RegistryConfig) -> Result<Self, RegistryError> {
        let client = redis::Client::open(url).map_err(|e| RegistryError::Url(e.to_string()))?;
        Ok(Registry {
            client,
            connection: Mutex::new(None),
            config,
        })
    }

    /// The lease of a published record.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    /// The key names.
    pub fn keys(&self) -> &KeySpace {
        &self.config.keys
    }

    /// A handle on the shared connection, connecting first when there is none. The lock only
    /// guards creating the connection; commands run on clones of it.
    pub async fn connection(&self) -> Result<ConnectionManager, RegistryError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(1);
        let connect = self.client.get_connection_manager_with_config(config);
        let c = tokio::time::timeout(self.config.timeout * 2, connect)
            .await
            .map_err(|_| RegistryError::Redis("connect timed out".into()))??;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Writes `record` with a fresh lease and adds its node to the set of nodes.
    pub async fn publish(&self, record: &NodeRecord) -> Result<(), RegistryError> {
        let json =
            serde_json::to_string(record).map_err(|e| RegistryError::Encode(e.to_string()))?;
        let lease_ms = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        let mut c = self.connection().await?;
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.config.keys.node(&record.node_id))
            .arg(json)
            .arg("PX")
            .arg(lease_ms)
            .ignore()
            .sadd(self.config.keys.nodes(), &record.node_id)
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    /// Removes the node's record at once (a clean shutdown), instead of waiting for its lease.
    pub async fn withdraw(&self, node_id: &str) -> Result<(), RegistryError> {
        let mut c = self.connection().await?;
        redis::pipe()
            .atomic()
            .del(self.config.keys.node(node_id))
            .ignore()
            .srem(self.config.keys.nodes(), node_id)
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    /// The records of every node whose lease has not run out. Ids whose record expired are
    /// removed from the set on the way.
    pub async fn live_nodes(&self) -> Result<LiveNodes, RegistryError> {
        let mut c = self.connection().await?;
        let mut ids: Vec<String> = c.smembers(self.config.keys.nodes()).await?;
        if ids.is_empty() {
            return Ok(LiveNodes::default());
        }
        ids.sort();
        let keys: Vec<String> = ids.iter().map(|id| self.config.keys.node(id)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
        let mut live = LiveNodes::default();
        let mut expired = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            match value {
                None => expired.push(id),
                Some(json) => match serde_json::from_str::<NodeRecord>(&json) {
                    Ok(record) => live.records.push(record),
                    Err(e) => {
                        tracing::warn!(node = %id, error = %e, "unreadable node record skipped");
                        live.unreadable += 1;
                    }
                },
            }
        }
        if !expired.is_empty() {
            // A node that publishes again between the MGET and this SREM re-adds itself with
            // its next heartbeat.
            let _: usize = c.srem(self.config.keys.nodes(), &expired).await?;
        }
        Ok(live)
    }
}
