//! The replicas' shared state in Redis: each replica's heartbeat, each room's owner lease, the
//! inbox channel of each replica. Key names are defined here once:
//! - `<prefix>:sig:replica:<id>`: a replica's heartbeat (`SET … PX`, renewed every
//!   [`super::HEARTBEAT_EVERY`]); gone [`super::REPLICA_LEASE`] after the replica dies;
//! - `<prefix>:sig:owner:<room>`: the id of the replica that owns the room (`PX` lease renewed by
//!   its owner while the room exists there);
//! - `<prefix>:sig:inbox:<id>`: the pub/sub channel a replica reads its [`Envelope`]s from.
//!
//! Ownership changes only in Lua scripts that compare before they set, so two replicas can
//! never both win a claim.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};

use super::envelope::Envelope;

/// A Redis command failed (unreachable, timed out, or an unexpected reply).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct StoreError(String);

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError(e.to_string())
    }
}

/// Who owns a room after a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This replica (it already did, or the room had no owner).
    Mine,
    /// This replica, taking the room over from a replica whose heartbeat is gone.
    TakenOver(String),
    /// Another live replica.
    Other(String),
}

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `<prefix>:sig:`.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: format!("{prefix}:sig:"),
        }
    }

    /// `<prefix>:sig:`.
    pub(super) fn sig_prefix(&self) -> &str {
        &self.prefix
    }

    /// A replica's heartbeat key.
    pub fn replica(&self, id: &str) -> String {
        format!("{}replica:{id}", self.prefix)
    }

    /// The prefix of every heartbeat key (a replica id follows).
    fn replica_prefix(&self) -> String {
        format!("{}replica:", self.prefix)
    }

    /// A room's owner key.
    pub fn owner(&self, room: &str) -> String {
        format!("{}owner:{room}", self.prefix)
    }

    /// The prefix of every owner key (a room name follows).
    pub fn owner_prefix(&self) -> String {
        format!("{}owner:", self.prefix)
    }

    /// A replica's inbox channel.
    pub fn inbox(&self, id: &str) -> String {
        format!("{}inbox:{id}", self.prefix)
    }
}

/// Claims a room: keeps or sets this replica as owner, takes it over from an owner whose
/// heartbeat is gone, or names the live owner. Returns `{owner, taken_over}`.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], 0}
end
if redis.call('EXISTS', ARGV[3] .. owner) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {owner, 1}
end
return {owner, 0}
";

/// Takes a room over from `ARGV[2]` (whose inbox nobody reads) if it still owns it.
const TAKE_OVER: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Renews an owner lease this replica holds, or sets it again if it is gone (Redis restarted),
/// and the lease of the room's record (`KEYS[2]`, `ARGV[3]` ms); 0 when another replica owns
/// the room now.
const RENEW: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
";

/// Deletes an owner lease this replica holds.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The shared state, over one multiplexed connection (cheap to clone).
#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    connection: ConnectionManager,
    keys: Keys,
    replica: String,
    room_lease: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.keys)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// How long one Redis command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Store {
    /// Connects to `url` (the connection reconnects by itself when Redis comes back).
    pub async fn connect(
        url: &str,
        keys: Keys,
        replica: String,
        room_lease: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let connection = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError("connect timed out".into()))??;
        Ok(Store {
            client,
            connection,
            keys,
            replica,
            room_lease,
        })
    }

    /// A handle on the shared connection.
    pub(super) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// The Redis client (for the pub/sub connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Writes this replica's heartbeat with a lease of `lease`.
    pub async fn heartbeat(&self, lease: Duration) -> Result<(), StoreError> {
        let mut c = self.connection.clone();
        let _: () = c
            .pset_ex(self.keys.replica(&self.replica), "alive", millis(lease))
            .await?;
        Ok(())
    }

    /// Removes this replica's heartbeat (a clean stop).
    pub async fn withdraw(&self) -> Result<(), StoreError> {
        let mut c = self.connection.clone();
        let _: () = c.del(self.keys.replica(&self.replica)).await?;
        Ok(())
    }

    /// Claims `room` (see [`Claim`]).
    pub async fn claim(&self, room: &str) -> Result<Claim, StoreError> {
        let mut c = self.connection.clone();
        let (owner, taken_over): (String, i64) = Script::new(CLAIM)
            .key(self.keys.owner(room))
            .arg(&self.replica)
            .arg(millis(self.room_lease))
            .arg(self.keys.replica_prefix())
            .invoke_async(&mut c)
            .await?;
        Ok(match (owner == self.replica, taken_over) {
            (true, _) => Claim::Mine,
            (false, 1) => Claim::TakenOver(owner),
            (false, _) => Claim::Other(owner),
        })
    }

    /// Takes `room` over from `owner`, whose inbox nobody reads; false when the room's owner
    /// changed meanwhile.
    pub async fn take_over(&self, room: &str, owner: &str) -> Result<bool, StoreError> {
        let mut c = self.connection.clone();
        let done: i64 = Script::new(TAKE_OVER)
            .key(self.keys.owner(room))
            .arg(&self.replica)
            .arg(owner)
            .arg(millis(self.room_lease))
            .invoke_async(&mut c)
            .await?;
        Ok(done == 1)
    }

    /// Renews the owner leases of `rooms`; returns the rooms another replica owns now.
    pub async fn renew(&self, rooms: &[String]) -> Result<Vec<String>, StoreError> {
        let mut c = self.connection.clone();
        let script = Script::new(RENEW);
        let mut lost = Vec::new();
        for room in rooms {
            let kept: i64 = script
                .key(self.keys.owner(room))
                .key(self.keys.record(room))
                .arg(&self.replica)
                .arg(millis(self.room_lease))
                .arg(millis(super::records::RECORD_LEASE))
                .invoke_async(&mut c)
                .await?;
            if kept == 0 {
                lost.push(room.clone());
            }
        }
        Ok(lost)
    }

    /// Gives up the owner lease of `room` (it closed here).
    pub async fn release(&self, room: &str) -> Result<(), StoreError> {
        let mut c = self.connection.clone();
        let _: i64 = Script::new(RELEASE)
            .key(self.keys.owner(room))
            .arg(&self.replica)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// How many subscribers read each replica's inbox (0: the replica is gone or cut off).
    pub async fn listening(&self, replicas: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        if replicas.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.connection.clone();
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB");
        for r in replicas {
            cmd.arg(self.keys.inbox(r));
        }
        let counts: Vec<(String, u64)> = cmd.query_async(&mut c).await?;
        let prefix = self.keys.inbox("");
        Ok(counts
            .into_iter()
            .map(|(channel, n)| {
                (
                    channel.strip_prefix(&prefix).unwrap_or(&channel).to_owned(),
                    n,
                )
            })
            .collect())
    }

    /// Sends `envelope` to `replica`'s inbox; returns how many subscribers got it (0: nobody
    /// reads that inbox).
    pub async fn send(&self, replica: &str, envelope: &Envelope) -> Result<usize, StoreError> {
        let json = serde_json::to_string(envelope).map_err(|e| StoreError(e.to_string()))?;
        let mut c = self.connection.clone();
        let receivers: usize = c.publish(self.keys.inbox(replica), json).await?;
        Ok(receivers)
    }

    /// Every room's owner, sorted by room (for the admin API).
    pub async fn owners(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut c = self.connection.clone();
        let pattern = format!("{}*", self.keys.owner_prefix());
        let mut keys: Vec<String> = Vec::new();
        {
            let mut iter = c.scan_match::<_, String>(pattern).await?;
            while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(key?);
            }
        }
        keys.sort();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let owners: Vec<Option<String>> = c.mget(&keys).await?;
        let prefix = self.keys.owner_prefix();
        Ok(keys
            .into_iter()
            .zip(owners)
            .filter_map(|(key, owner)| Some((key.strip_prefix(&prefix)?.to_owned(), owner?)))
            .collect())
    }

    /// The ids of the replicas whose heartbeat is live.
    pub async fn live_replicas(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.connection.clone();
        let prefix = self.keys.replica_prefix();
        let mut out = Vec::new();
        {
            let mut iter = c.scan_match::<_, String>(format!("{prefix}*")).await?;
            while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                let key = key?;
                if let Some(id) = key.strip_prefix(&prefix) {
                    out.push(id.to_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
