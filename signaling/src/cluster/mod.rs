//! Several signaling replicas serving one deployment, on Redis (docs/architecture.md §7.56).
//!
//! Every room has one *owner* replica, named by a lease in Redis ([`store`]); the owner runs the
//! room's actor and every session of it, exactly as a single replica does. A client may connect
//! to any replica: the replica reads the connection's first frame (its `join`), claims the room
//! (it becomes the owner when nobody else is, or when the owner's heartbeat is gone) and either
//! runs the session itself or carries the connection to the owner ([`proxy`]) over Redis pub/sub
//! ([`bus`], [`envelope`]), where the owner runs the same session over the bus ([`served`]).
//! Messages of one connection travel in order (one publisher each way, Redis keeps its order).
//!
//! A replica that dies loses its rooms: the others see nobody reading its inbox (at once) or its
//! heartbeat gone (within [`REPLICA_LEASE`]), close the connections they proxied to it with 1012
//! so their clients reconnect, and the first join that comes for one of its rooms takes the room
//! over. While Redis is unreachable, rooms owned here go on (their sessions are local), proxied
//! connections end (their clients retry), and new joins are refused with `unavailable`.

mod bus;
mod envelope;
mod metrics;
mod proxy;
mod records;
mod served;
mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use tracing::{info, warn};

use crate::hub::{Hub, HubError};
use crate::protocol::{ErrorBody, ErrorCode, ServerMessage};
use crate::session::{SessionContext, TransportError, run_session};

pub use envelope::{Body, BytesKind, Direction, Envelope};
pub use metrics::{BUS_DROP_REASONS, ClusterMetrics, REDIS_OPS};
pub use proxy::{CLOSE_REASON_OWNER_LOST, CLOSE_SERVICE_RESTART};
pub use records::{RECORD_LEASE, RecordWriter, RoomRecords};
pub use store::{Claim, Keys, Store, StoreError};

/// How often a replica writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// A replica's heartbeat lease: it counts as gone this long after its last heartbeat.
pub const REPLICA_LEASE: Duration = Duration::from_secs(2);
/// How often the owner leases of the rooms held here are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// A room's owner lease (renewed every [`RENEW_EVERY`]; a lost owner's rooms are taken over by
/// its heartbeat, not by this lease running out).
pub const ROOM_LEASE: Duration = Duration::from_secs(10);
/// Close code when a join cannot be served for a moment (RFC 6455 "try again later").
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// How many times a connection is routed again when its owner refuses it or is gone.
const ROUTE_ATTEMPTS: usize = 3;

/// What a replica needs to join a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The Redis (`redis://host:port/db`).
    pub redis_url: String,
    /// Key prefix (the node registry's: `<prefix>:sig:…`).
    pub prefix: String,
    /// This replica's id (unique in the deployment).
    pub replica_id: String,
}

/// What the bus needs to run sessions for other replicas.
#[derive(Clone)]
pub struct ServedContext {
    session: SessionContext,
    store: Store,
    records: RoomRecords,
    metrics: ClusterMetrics,
}

/// This replica's membership in the cluster (cheap to clone).
#[derive(Clone)]
pub struct Cluster {
    store: Store,
    records: RoomRecords,
    bus: bus::Bus,
    metrics: ClusterMetrics,
    next_conn: Arc<AtomicU64>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("replica", &self.store.replica())
            .finish_non_exhaustive()
    }
}

/// Where a connection's room is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Here.
    Local,
    /// At this other replica.
    Remote(String),
    /// Nobody can say (Redis unreachable).
    Unavailable,
}

/// One room's owner, for the admin API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoomOwner {
    /// The room.
    pub room: String,
    /// The replica that owns it.
    pub replica: String,
    /// Its devices, by its record (suspended ones included); absent without a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<u32>,
    /// The media node holding it (a control URL), by its record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_node: Option<String>,
}

/// The cluster as the admin API shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterView {
    /// This replica.
    pub replica: String,
    /// The replicas whose heartbeat is live.
    pub replicas: Vec<String>,
    /// Every room's owner.
    pub rooms: Vec<RoomOwner>,
}

impl Cluster {
    /// Connects to Redis, starts the heartbeat, the lease renewal and the bus.
    pub async fn start(
        settings: &ClusterSettings,
        session: SessionContext,
    ) -> Result<Cluster, StoreError> {
        let store = Store::connect(
            &settings.redis_url,
            Keys::new(&settings.prefix),
            settings.replica_id.clone(),
            ROOM_LEASE,
        )
        .await?;
        let metrics = session.hub.metrics().cluster.clone();
        store.heartbeat(REPLICA_LEASE).await?;
        let records = RoomRecords::new(store.clone(), metrics.clone());
        session.hub.keep_records(records.clone());
        let served = ServedContext {
            session: session.clone(),
            store: store.clone(),
            records: records.clone(),
            metrics: metrics.clone(),
        };
        let bus = bus::Bus::start(store.clone(), metrics.clone(), served);
        tokio::spawn(keep_leases(store.clone(), session, metrics.clone()));
        info!(replica = %settings.replica_id, prefix = %settings.prefix, "signaling replica in a cluster");
        Ok(Cluster {
            store,
            records,
            bus,
            metrics,
            next_conn: Arc::new(AtomicU64::new(1)),
        })
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        self.store.replica()
    }

    fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Where `room` is served, claiming it for this replica when nobody (alive) owns it.
    pub async fn route(&self, room: &str, hub: &Hub) -> Route {
        route_room(&self.store, &self.records, &self.metrics, room, hub).await
    }

    /// The cluster's replicas and rooms (admin API).
    pub async fn view(&self) -> Result<ClusterView, StoreError> {
        let replicas = self.store.live_replicas().await?;
        let mut rooms = Vec::new();
        for (room, replica) in self.store.owners().await? {
            let record = self.records.load(&room).await?;
            rooms.push(RoomOwner {
                participants: record
                    .as_ref()
                    .map(|r| u32::try_from(r.members.len()).unwrap_or(u32::MAX)),
                media_node: record.and_then(|r| r.media_node),
                room,
                replica,
            });
        }
        Ok(ClusterView {
            replica: self.store.replica().to_owned(),
            replicas,
            rooms,
        })
    }

    /// Gives up this replica's room leases and heartbeat (a clean stop, after its rooms closed).
    pub async fn leave(&self, rooms: &[String]) {
        for room in rooms {
            let _ = self.store.release(room).await;
        }
        if let Err(e) = self.store.withdraw().await {
            warn!(error = %e, "could not withdraw the replica heartbeat");
        }
    }

    /// Serves one client WebSocket: routes it by its `join` and runs its session here or
    /// carries it to the room's owner.
    pub async fn serve_socket<W, R, E>(
        &self,
        ctx: SessionContext,
        mut sink: W,
        mut stream: R,
        peer: Option<std::net::SocketAddr>,
    ) where
        W: Sink<Message> + Unpin,
        R: Stream<Item = Result<Message, E>> + Unpin,
        E: TransportError,
    {
        // The first text frame names the room; the idle timeout bounds the wait for it.
        let first = loop {
            match tokio::time::timeout(ctx.limits.idle_timeout, stream.next()).await {
                Ok(Some(Ok(m @ Message::Text(_)))) => break m,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                // A first frame of another kind, a transport error, a close or silence: the
                // local session answers it as it would anyway.
                Ok(Some(other)) => {
                    let replay = futures_util::stream::iter([other]).chain(stream);
                    run_session(sink, replay, ctx, peer).await;
                    return;
                }
                Ok(None) | Err(_) => return,
            }
        };
        let Some(room) = join_room(&first) else {
            let replay = futures_util::stream::iter([Ok(first)]).chain(stream);
            run_session(sink, replay, ctx, peer).await;
            return;
        };
        for _ in 0..ROUTE_ATTEMPTS {
            match self.route(&room, &ctx.hub).await {
                Route::Local => {
                    let replay = futures_util::stream::iter([Ok(first)]).chain(stream);
                    run_session(sink, replay, ctx, peer).await;
                    return;
                }
                Route::Remote(owner) => {
                    let carry = proxy::Carry {
                        owner: &owner,
                        room: &room,
                        first: &first,
                        peer,
                    };
                    match proxy::run(self, &ctx, carry, sink, stream).await {
                        proxy::Proxied::Done => return,
                        proxy::Proxied::Reroute {
                            sink: s,
                            stream: r,
                            owner_gone,
                        } => {
                            if owner_gone {
                                match self.store.take_over(&room, &owner).await {
                                    Ok(true) => {
                                        self.metrics.takeovers.inc();
                                        info!(room = %room, previous = %owner, "took over a room whose replica reads no messages");
                                    }
                                    Ok(false) => {}
                                    Err(_) => self.metrics.redis_error("claim"),
                                }
                            }
                            sink = s;
                            stream = r;
                        }
                    }
                }
                Route::Unavailable => break,
            }
        }
        refuse_unavailable(&ctx, &mut sink, &first).await;
    }
}

/// Where `room` is served: here when it is here already, or when this replica wins its claim
/// (restoring it from its record when another replica held it before); at its live owner
/// otherwise.
async fn route_room(
    store: &Store,
    records: &RoomRecords,
    metrics: &ClusterMetrics,
    room: &str,
    hub: &Hub,
) -> Route {
    if hub.room(room).is_some() {
        return Route::Local;
    }
    match store.claim(room).await {
        Ok(Claim::Mine) => {}
        Ok(Claim::TakenOver(previous)) => {
            metrics.takeovers.inc();
            info!(room, previous = %previous, "took over a room from a lost replica");
        }
        Ok(Claim::Other(owner)) => return Route::Remote(owner),
        Err(e) => {
            metrics.redis_error("claim");
            warn!(room, error = %e, "cannot claim a room (Redis unreachable?)");
            return Route::Unavailable;
        }
    }
    // A room whose record is kept was held by another replica a moment ago: restored, so its
    // devices resume (nobody told anything). Without a record, the join creates it.
    match records.load(room).await {
        Ok(Some(record)) => match hub.restore_room(record).await {
            Ok(_) | Err(HubError::Exists) => {}
            Err(e) => warn!(room, error = %e, "could not restore a room from its record"),
        },
        Ok(None) => {}
        Err(_) => metrics.redis_error("record"),
    }
    Route::Local
}

/// The room a `join` names (`None`: not a join, or not JSON).
fn join_room(first: &Message) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct JoinHead {
        #[serde(rename = "type")]
        ty: String,
        room: String,
    }
    let Message::Text(text) = first else {
        return None;
    };
    let head: JoinHead = serde_json::from_str(text.as_str()).ok()?;
    (head.ty == "join").then_some(head.room)
}

/// Refuses a join that cannot be routed now: `error` `unavailable` naming its `id`, close 1013.
async fn refuse_unavailable<W>(ctx: &SessionContext, sink: &mut W, first: &Message)
where
    W: Sink<Message> + Unpin,
{
    #[derive(serde::Deserialize)]
    struct IdHead {
        id: Option<crate::protocol::RequestId>,
    }
    let request_id = match first {
        Message::Text(text) => serde_json::from_str::<IdHead>(text.as_str())
            .ok()
            .and_then(|h| h.id),
        _ => None,
    };
    ctx.hub.metrics().reject("unavailable");
    let error = ServerMessage::Error(ErrorBody {
        code: ErrorCode::Unavailable,
        message: "the service cannot take new joins for a moment (its shared state is unreachable); try again".into(),
        request_id,
    });
    let write = ctx.limits.write_timeout;
    let _ = tokio::time::timeout(write, sink.send(Message::Text(error.to_json().into()))).await;
    let frame = CloseFrame {
        code: CLOSE_TRY_AGAIN,
        reason: Utf8Bytes::from_static("try again later"),
    };
    let _ = tokio::time::timeout(write, sink.send(Message::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(write, sink.close()).await;
}

/// Writes the heartbeat and renews the owner leases of the rooms held here, releasing those of
/// rooms that closed; counts leases found held by another replica.
async fn keep_leases(store: Store, session: SessionContext, metrics: ClusterMetrics) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: HashSet<String> = HashSet::new();
    let mut shutdown = session.shutdown.clone();
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if store.heartbeat(REPLICA_LEASE).await.is_err() {
                    metrics.redis_error("heartbeat");
                }
            }
            _ = renew.tick() => {
                let rooms = session.hub.room_names();
                for gone in held.iter().filter(|r| !rooms.contains(r)) {
                    let _ = store.release(gone).await;
                }
                match store.renew(&rooms).await {
                    Ok(lost) => {
                        for room in &lost {
                            metrics.leases_lost.inc();
                            warn!(room = %room, "another replica holds the owner lease of a room held here; yielding it");
                            session.hub.yield_room(room);
                        }
                        metrics.rooms_owned.set(i64::try_from(rooms.len() - lost.len()).unwrap_or(i64::MAX));
                    }
                    Err(_) => metrics.redis_error("renew"),
                }
                held = rooms.into_iter().collect();
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    // The drain closes the rooms; the server withdraws the heartbeat after.
                    return;
                }
            }
        }
    }
}
