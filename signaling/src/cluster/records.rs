//! Rooms' records in Redis (`<prefix>:sig:room:<name>`, JSON of [`RoomRecord`]): written by
//! the room's owner whenever the record changes, one writer task per room (it keeps only the
//! latest record, so a burst of joins is one write, not one per join); deleted when the room
//! closes; kept alive with the owner lease (a record outlives a lost owner by
//! [`RECORD_LEASE`] at most). A replica that takes the room over reads it
//! ([`RoomRecords::load`]) and restores the room (docs/architecture.md §7.56).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::metrics::ClusterMetrics;
use super::store::{Keys, Store, StoreError};
use crate::room::RoomRecord;

/// How long a record outlives its last renewal (its owner renews it with the owner lease).
pub const RECORD_LEASE: Duration = Duration::from_secs(30);

/// Where rooms' records are kept (cheap to clone).
#[derive(Clone, Debug)]
pub struct RoomRecords {
    store: Store,
    metrics: ClusterMetrics,
}

/// The owner's side of one room's record: send it each new record; dropped, the record is
/// deleted (unless [abandoned](RecordWriter::abandon)).
#[derive(Debug)]
pub struct RecordWriter {
    latest: watch::Sender<Option<Arc<RoomRecord>>>,
    abandoned: bool,
}

impl RecordWriter {
    /// Replaces the room's record (written soon, coalesced with the ones that follow).
    pub fn write(&self, record: RoomRecord) {
        self.latest.send_replace(Some(Arc::new(record)));
    }

    /// Stops writing and leaves the record as it is: another replica owns the room now, and
    /// the record is its own.
    pub fn abandon(mut self) {
        self.abandoned = true;
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if !self.abandoned {
            // The room closed here: its record goes.
            self.latest.send_replace(None);
        }
    }
}

impl RoomRecords {
    pub(super) fn new(store: Store, metrics: ClusterMetrics) -> Self {
        RoomRecords { store, metrics }
    }

    /// Starts the writer of room `name`'s record.
    pub fn writer(&self, name: &str) -> RecordWriter {
        let (latest, mut rx) = watch::channel::<Option<Arc<RoomRecord>>>(None);
        let key = self.store.keys().record(name);
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            loop {
                if rx.changed().await.is_err() {
                    // Abandoned: the record is left to the room's new owner.
                    return;
                }
                let record = rx.borrow_and_update().clone();
                match record {
                    Some(record) => {
                        let json = match serde_json::to_string(&*record) {
                            Ok(json) => json,
                            Err(e) => {
                                warn!(error = %e, "a room record does not serialize");
                                continue;
                            }
                        };
                        if store.set_record(&key, json).await.is_err() {
                            metrics.redis_error("record");
                        }
                    }
                    _ => {
                        if store.delete_record(&key).await.is_err() {
                            metrics.redis_error("record");
                        }
                        return;
                    }
                }
            }
        });
        RecordWriter {
            latest,
            abandoned: false,
        }
    }

    /// The record of room `name`, if one is kept (`Ok(None)`: none, or one that does not
    /// parse, which is dropped).
    pub async fn load(&self, name: &str) -> Result<Option<RoomRecord>, StoreError> {
        let Some(json) = self
            .store
            .get_record(&self.store.keys().record(name))
            .await?
        else {
            return Ok(None);
        };
        match serde_json::from_str(&json) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                debug!(room = name, error = %e, "a room record that does not parse is ignored");
                Ok(None)
            }
        }
    }
}

impl Store {
    async fn set_record(&self, key: &str, json: String) -> Result<(), StoreError> {
        let mut c = self.connection();
        let lease = u64::try_from(RECORD_LEASE.as_millis()).unwrap_or(u64::MAX);
        let _: () = c.pset_ex(key, json, lease).await?;
        Ok(())
    }

    async fn delete_record(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.connection();
        let _: () = c.del(key).await?;
        Ok(())
    }

    async fn get_record(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.connection();
        Ok(c.get(key).await?)
    }
}

impl Keys {
    /// A room's record key.
    pub fn record(&self, room: &str) -> String {
        format!("{}room:{room}", self.sig_prefix())
    }
}
