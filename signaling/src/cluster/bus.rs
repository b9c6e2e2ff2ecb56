//! The bus: this replica's inbox on Redis pub/sub and the one task that reads it.
//!
//! The task owns the routing tables (one owner, no lock): the connections proxied from here to
//! another replica (by connection number) and the connections served here for another replica
//! (by that replica and its number). It also watches the replicas this one proxies to: every
//! [`LIVENESS_EVERY`] it asks Redis how many subscribers read each one's inbox, and a replica
//! nobody reads (killed, or cut off from Redis) has its proxied connections told
//! [`ProxyEvent::OwnerLost`] at once, without waiting for its heartbeat to end. When the pub/sub
//! connection drops (Redis restarted) the task subscribes again with a backoff.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::envelope::{Body, Direction, Envelope};
use super::served;
use super::store::Store;
use super::{ClusterMetrics, ServedContext};

/// How often the owners of proxied connections are checked.
pub(super) const LIVENESS_EVERY: Duration = Duration::from_millis(250);
/// Frames queued for one served session before it is ended as stuck.
const SERVED_QUEUE: usize = 1024;
/// Capacity of the command channel.
const COMMAND_QUEUE: usize = 4096;

/// What the bus tells a proxied connection.
#[derive(Debug)]
pub(super) enum ProxyEvent {
    /// A frame (or the end, or a refusal) from the room's owner.
    Down(Body),
    /// The room's owner replica is gone: the client must reconnect.
    OwnerLost,
}

/// A request to the bus task.
pub(super) enum BusCommand {
    /// Route envelopes for proxied connection `conn` to `tx`; its owner is `owner`.
    Proxy {
        /// The connection's number here.
        conn: u64,
        /// The replica that owns its room.
        owner: String,
        /// Where its envelopes go.
        tx: mpsc::Sender<ProxyEvent>,
    },
    /// Forget proxied connection `conn`.
    Unproxy(u64),
    /// Forget served connection (`from`, `conn`).
    Unserve(String, u64),
}

/// A handle on the bus task.
#[derive(Clone, Debug)]
pub(super) struct Bus {
    commands: mpsc::Sender<BusCommand>,
}

impl Bus {
    /// Sends a command to the bus task (false when it is gone).
    pub(super) async fn command(&self, command: BusCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Starts the bus task.
    pub(super) fn start(store: Store, metrics: ClusterMetrics, served: ServedContext) -> Bus {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let bus = Bus { commands: tx };
        let task = BusTask {
            store,
            metrics,
            served,
            bus: bus.clone(),
            proxied: HashMap::new(),
            serving: HashMap::new(),
        };
        tokio::spawn(task.run(rx));
        bus
    }
}

struct Proxied {
    owner: String,
    tx: mpsc::Sender<ProxyEvent>,
}

struct BusTask {
    store: Store,
    metrics: ClusterMetrics,
    served: ServedContext,
    bus: Bus,
    proxied: HashMap<u64, Proxied>,
    serving: HashMap<(String, u64), mpsc::Sender<Message>>,
}

impl BusTask {
    async fn run(mut self, mut commands: mpsc::Receiver<BusCommand>) {
        let inbox = self.store.keys().inbox(self.store.replica());
        let mut backoff = Duration::from_millis(100);
        let mut liveness = tokio::time::interval(LIVENESS_EVERY);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut messages = match self.subscribe(&inbox).await {
                Ok(stream) => {
                    backoff = Duration::from_millis(100);
                    info!(channel = %inbox, "reading the replica inbox");
                    Some(stream)
                }
                Err(e) => {
                    self.metrics.redis_error("subscribe");
                    warn!(error = %e, "cannot subscribe to the replica inbox; retrying");
                    None
                }
            };
            let retry = tokio::time::sleep(backoff);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    biased;
                    command = commands.recv() => match command {
                        Some(c) => self.handle_command(c),
                        None => return,
                    },
                    message = async { messages.as_mut()?.next().await }, if messages.is_some() => {
                        match message {
                            Some(m) => self.handle_message(m).await,
                            None => {
                                warn!("the replica inbox subscription ended (Redis away?); subscribing again");
                                break;
                            }
                        }
                    }
                    _ = &mut retry, if messages.is_none() => break,
                    _ = liveness.tick() => self.check_owners().await,
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn subscribe(&self, inbox: &str) -> Result<redis::aio::PubSubStream, redis::RedisError> {
        let mut pubsub = tokio::time::timeout(
            Duration::from_secs(2),
            self.store.client().get_async_pubsub(),
        )
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
        pubsub.subscribe(inbox).await?;
        Ok(pubsub.into_on_message())
    }

    fn handle_command(&mut self, command: BusCommand) {
        match command {
            BusCommand::Proxy { conn, owner, tx } => {
                self.proxied.insert(conn, Proxied { owner, tx });
            }
            BusCommand::Unproxy(conn) => {
                self.proxied.remove(&conn);
            }
            BusCommand::Unserve(from, conn) => {
                self.serving.remove(&(from, conn));
            }
        }
        self.set_gauges();
    }

    fn set_gauges(&self) {
        let side = |s| self.metrics.connections.with_label_values(&[s]);
        side("proxied").set(i64::try_from(self.proxied.len()).unwrap_or(i64::MAX));
        side("served").set(i64::try_from(self.serving.len()).unwrap_or(i64::MAX));
    }

    async fn handle_message(&mut self, message: redis::Msg) {
        self.metrics
            .bus_messages
            .with_label_values(&["received"])
            .inc();
        let Ok(envelope) = message
            .get_payload::<String>()
            .map_err(|e| e.to_string())
            .and_then(|p| serde_json::from_str::<Envelope>(&p).map_err(|e| e.to_string()))
        else {
            self.drop_one("malformed");
            return;
        };
        match envelope.dir {
            Direction::Down => self.down(envelope),
            Direction::Up => self.up(envelope).await,
        }
    }

    fn drop_one(&self, reason: &str) {
        self.metrics.bus_dropped.with_label_values(&[reason]).inc();
    }

    /// An envelope for a connection proxied from here.
    fn down(&mut self, envelope: Envelope) {
        let Some(proxied) = self.proxied.get(&envelope.conn) else {
            self.drop_one("unknown_connection");
            return;
        };
        if proxied
            .tx
            .try_send(ProxyEvent::Down(envelope.body))
            .is_err()
        {
            // The proxy is gone or stuck: it ends, and the owner hears of it from its task.
            self.drop_one("queue_full");
        }
    }

    /// An envelope for a connection served here.
    async fn up(&mut self, envelope: Envelope) {
        let key = (envelope.from.clone(), envelope.conn);
        match envelope.body {
            Body::Open { peer, room } => {
                let (tx, rx) = mpsc::channel(SERVED_QUEUE);
                self.serving.insert(key, tx);
                self.set_gauges();
                debug!(from = %envelope.from, conn = envelope.conn, "serving a connection for another replica");
                tokio::spawn(served::run(
                    self.served.clone(),
                    self.bus.clone(),
                    envelope.from,
                    envelope.conn,
                    room,
                    peer,
                    rx,
                ));
            }
            Body::End => {
                // Dropping the sender ends the session's stream: a connection lost.
                self.serving.remove(&key);
                self.set_gauges();
            }
            body => {
                let Some(tx) = self.serving.get(&key) else {
                    self.drop_one("unknown_connection");
                    return;
                };
                let Some(message) = body.to_message() else {
                    self.drop_one("malformed");
                    return;
                };
                if tx.try_send(message).is_err() {
                    // A session that stopped reading (or ended): end it.
                    self.drop_one("queue_full");
                    self.serving.remove(&key);
                    self.set_gauges();
                }
            }
        }
    }

    /// Tells the proxied connections of every owner nobody listens to any more.
    async fn check_owners(&mut self) {
        let owners: Vec<String> = self
            .proxied
            .values()
            .map(|p| p.owner.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if owners.is_empty() {
            return;
        }
        let counts = match self.store.listening(&owners).await {
            Ok(c) => c,
            Err(e) => {
                self.metrics.redis_error("liveness");
                debug!(error = %e, "cannot check the owners of proxied connections");
                return;
            }
        };
        let lost: HashSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n == 0)
            .map(|(owner, _)| owner)
            .collect();
        if lost.is_empty() {
            return;
        }
        warn!(
            ?lost,
            "replicas owning rooms of proxied connections are gone"
        );
        self.proxied.retain(|_, p| {
            if lost.contains(&p.owner) {
                let _ = p.tx.try_send(ProxyEvent::OwnerLost);
                false
            } else {
                true
            }
        });
        self.set_gauges();
    }
}
