//! A separate `sfu` process driven over its HTTP control API (`sfu/src/control/mod.rs`
//! documents it): JSON requests with the shared bearer secret, events as newline-delimited JSON
//! from `GET /control/events`. Use `https://` where the control port crosses hosts.
//!
//! The event stream never ends by itself, so it has no request timeout; it is treated as dead
//! when the node's heartbeats stop for `EVENT_STREAM_IDLE` (8 s), and reconnected with backoff,
//! resuming after the last event read (`?instance=…&since=…`): nothing is lost or repeated.
//! When the node answers `reset` (it restarted, or the events in between are gone) this client
//! re-creates every room it created on the node and emits [`MediaEvent::MediaReset`] for each,
//! so signaling tells the room's clients to start a fresh media session.
//! [`RemoteSfu::is_attached`](MediaNode::is_attached) is false from a failed connection attempt
//! (or a stream gone silent) until the stream is back; [`MediaNode::state`] says since when, and
//! whether the node refused a room because it is draining.
//!
//! A room moved to another node of the pool ([`MediaNode::abandon_room`]) is forgotten here: it
//! is not re-created after a reset, and a copy the node may still hold is closed as soon as the
//! node is reachable again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use sfu_control_api::relay::{RelayExport, RelayExportRequest, RelayImported, RelayTracks};
use sfu_control_api::{
    AddParticipant, AnswerBody, ErrorBody, EventsQuery, PublishBody, ResetReason, RoomCreated,
    SdpBody, SdpKind, StreamLine, SubscriptionBody,
};
use tokio::sync::mpsc;

use super::translate::{
    Announcements, create_room_body, receive_slot_counts, role_body, subscription_body,
};
use super::{
    MediaError, MediaEvent, MediaNode, MediaNodeInfo, MediaRoomSpec, MediaSessionId, NodeState,
    ParticipantSpec, PublishSource, SessionDescription,
};
use crate::auth::Secret;
use crate::protocol::{MediaResetReason, ReceiveSlotCounts, Subscription, TrackAnnouncement};

/// Longest a control request may take (an SDP answer needs the node to set up a peer). Not
/// applied to the event stream, which never ends.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the event stream may stay silent before it counts as dead (the node sends a
/// heartbeat after 2 s without events).
const EVENT_STREAM_IDLE: Duration = Duration::from_secs(8);
/// Wait before reconnecting a broken event stream (doubles up to [`MAX_BACKOFF`]).
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest event line accepted from the node; longer lines are dropped and counted in logs.
const MAX_EVENT_LINE: usize = 256 * 1024;

/// A remote SFU node.
#[derive(Clone)]
pub struct RemoteSfu {
    base: Arc<str>,
    secret: Secret,
    http: reqwest::Client,
    announced: Arc<Announcements>,
    /// The rooms created on the node and not closed, to re-create after a node restart.
    rooms: Arc<Mutex<HashMap<String, MediaRoomSpec>>>,
    /// Rooms closed or moved away while the node was unreachable: the node may still hold
    /// them, so they are closed there once it answers again.
    stale: Arc<Mutex<HashSet<String>>>,
    /// Whether the node is reachable, since when not, and whether it is draining.
    attachment: Arc<Attachment>,
}

/// Whether a node is reachable: written by the event stream's task on each change, read by
/// `/healthz`, placement and failover.
#[derive(Debug)]
struct Attachment {
    /// Whether the event stream is connected (or has not failed to connect yet).
    attached: AtomicBool,
    /// When the node was found unreachable (set with `attached` going false, cleared with it
    /// going true; written on those transitions only).
    detached_since: Mutex<Option<Instant>>,
    /// The node refused a room because it is draining (cleared when it restarts).
    draining: AtomicBool,
}

impl Attachment {
    fn new() -> Self {
        Attachment {
            attached: AtomicBool::new(true),
            detached_since: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A panic while holding this lock leaves an instant that is still usable.
        self.detached_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mark_detached(&self) {
        if self.attached.swap(false, Ordering::AcqRel) {
            *self.since() = Some(Instant::now());
        }
    }

    fn mark_attached(&self) {
        if !self.attached.swap(true, Ordering::AcqRel) {
            *self.since() = None;
        }
    }

    fn state(&self) -> NodeState {
        if !self.attached.load(Ordering::Acquire) {
            // Between the flag and the instant being written: unreachable from now.
            let since = self.since().unwrap_or_else(Instant::now);
            NodeState::Detached { since }
        } else if self.draining.load(Ordering::Relaxed) {
            NodeState::Draining
        } else {
            NodeState::Attached
        }
    }
}

impl std::fmt::Debug for RemoteSfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSfu")
            .field("base", &self.base)
            .finish()
    }
}

impl RemoteSfu {
    /// A client of the node at `base_url` (e.g. `http://127.0.0.1:7880`, or `https://…` where
    /// the control port crosses hosts) with the node's control secret. `ca_pem` adds a trusted
    /// CA certificate (PEM) to the system's roots, for a node with a private certificate.
    pub fn new(base_url: &str, secret: Secret, ca_pem: Option<&[u8]>) -> Result<Self, MediaError> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| MediaError::Failed(format!("SFU CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| MediaError::Failed(format!("HTTP client: {e}")))?;
        Ok(RemoteSfu {
            base: base_url.trim_end_matches('/').into(),
            secret,
            http,
            announced: Arc::default(),
            rooms: Arc::default(),
            stale: Arc::default(),
            attachment: Arc::new(Attachment::new()),
        })
    }

    /// The node's base URL (names it in logs and the admin API; holds no secret).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, MediaRoomSpec>> {
        // A panic while holding this lock leaves a map that is still usable.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stale(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock leaves a set that is still usable.
        self.stale
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes on the node the rooms it may still hold though they were closed or moved away
    /// while it was unreachable; a room it still cannot be asked about stays for the next try.
    async fn close_stale_rooms(&self) {
        let rooms: Vec<String> = self.stale().drain().collect();
        for room in rooms {
            match self.delete_room(&room).await {
                Ok(()) | Err(MediaError::UnknownRoom) => {
                    tracing::info!(sfu = %self.base, room = %room, "closed a stale copy of a room moved or closed while the SFU was away");
                }
                Err(e) => {
                    tracing::warn!(sfu = %self.base, room = %room, error = %e, "could not close a stale room on the SFU");
                    self.stale().insert(room);
                }
            }
        }
    }

    async fn delete_room(&self, room: &str) -> Result<(), MediaError> {
        let path = format!("/control/rooms/{}", segment(room));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// Creates the room on the node; returns the receive slot counts it answers (a room with
    /// receive slots; a node older than them answers no body).
    async fn post_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let body = create_room_body(room);
        let resp = self
            .send_json(Method::POST, "/control/rooms", &body)
            .await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| MediaError::Failed(format!("SFU answer unreadable: {e}")))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let created: RoomCreated = serde_json::from_slice(&bytes)
            .map_err(|e| MediaError::Failed(format!("SFU answer unreadable: {e}")))?;
        Ok(created.receive_slots.map(receive_slot_counts))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.secret.expose())
    }

    /// Sends a request with [`REQUEST_TIMEOUT`] and maps the node's status codes to
    /// [`MediaError`]s.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, MediaError> {
        self.execute(req.timeout(REQUEST_TIMEOUT)).await
    }

    /// Sends a request as it is (no timeout beyond the connect timeout) and maps the node's
    /// status codes to [`MediaError`]s.
    async fn execute(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, MediaError> {
        let resp = req
            .send()
            .await
            .map_err(|e| MediaError::Failed(format!("SFU unreachable: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.json::<ErrorBody>().await.ok();
        if status == StatusCode::SERVICE_UNAVAILABLE
            && body.as_ref().is_some_and(|b| b.code == "draining")
            && !self.attachment.draining.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(sfu = %self.base, "the SFU is draining: it takes no new rooms");
        }
        let code = body.as_ref().map(|b| b.code.clone()).unwrap_or_default();
        let reason = body.map_or_else(|| status.to_string(), |b| b.error);
        if code == "already_published" || code == "not_published" {
            return Err(MediaError::Publication(reason));
        }
        if code == "room_exists" {
            return Err(MediaError::RoomExists);
        }
        Err(match status {
            StatusCode::NOT_FOUND if reason.contains("room") => MediaError::UnknownRoom,
            StatusCode::NOT_FOUND if reason.contains("participant") => {
                MediaError::UnknownParticipant
            }
            StatusCode::BAD_REQUEST
            | StatusCode::NOT_FOUND
            | StatusCode::CONFLICT
            | StatusCode::UNPROCESSABLE_ENTITY => MediaError::Refused(reason),
            StatusCode::UNAUTHORIZED => {
                MediaError::Failed("the SFU refused the control secret".into())
            }
            _ => MediaError::Failed(reason),
        })
    }

    async fn send_json<T: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response, MediaError> {
        self.send(self.request(method, path).json(body)).await
    }
}

/// The control API path of one participant's media session, plus `rest` (`""`, `"/sdp"` or
/// `"/subscriptions"`), with the session in the query (`sfu_control_api::SessionQuery`).
fn participant_path(room: &str, device: &str, rest: &str, session: MediaSessionId) -> String {
    format!(
        "/control/rooms/{}/participants/{}{rest}?session={}",
        segment(room),
        segment(device),
        session.0
    )
}

/// Percent-encodes a path segment (room and device names are free text).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn json_of<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, MediaError> {
    resp.json::<T>()
        .await
        .map_err(|e| MediaError::Failed(format!("SFU answer unreadable: {e}")))
}

async fn answer_of(resp: reqwest::Response) -> Result<Option<String>, MediaError> {
    resp.json::<AnswerBody>()
        .await
        .map(|b| b.answer)
        .map_err(|e| MediaError::Failed(format!("SFU answer unreadable: {e}")))
}

#[async_trait]
impl MediaNode for RemoteSfu {
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        // A room moved back here: a copy the node may still hold from before is closed first.
        if self.stale().remove(&room.room)
            && let Err(e) = self.delete_room(&room.room).await
        {
            tracing::debug!(room = %room.room, error = %e, "closing a stale copy before creating the room again");
        }
        let counts = match self.post_room(room).await {
            // Only this process creates its rooms, and with several replicas only the room's
            // owner does (docs/architecture.md §7.56): a copy the node holds was left by an
            // earlier owner (killed, or a lost replica whose room was taken over here). Its
            // media sessions belong to connections that are gone; it is replaced.
            Err(MediaError::RoomExists) => {
                tracing::info!(sfu = %self.base, room = %room.room, "replacing a copy of the room left on the SFU by an earlier owner");
                self.delete_room(&room.room).await?;
                self.post_room(room).await?
            }
            other => other?,
        };
        self.rooms().insert(room.room.clone(), room.clone());
        Ok(counts)
    }

    async fn adopt_room(
        &self,
        room: &MediaRoomSpec,
        _node_url: Option<&str>,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        self.stale().remove(&room.room);
        let counts = match self.post_room(room).await {
            // The copy the earlier owner made, with the media sessions of the devices that
            // resume: kept. Its receive-slot counts are in the room's record.
            Err(MediaError::RoomExists) => {
                tracing::info!(sfu = %self.base, room = %room.room, "took on the room an earlier owner created on the SFU");
                None
            }
            other => other?,
        };
        self.rooms().insert(room.room.clone(), room.clone());
        Ok(counts)
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        self.rooms().remove(room);
        self.announced.forget_room(room);
        let result = self.delete_room(room).await;
        if let Err(MediaError::Failed(_)) = &result {
            // Unreachable: the node may still hold it when it comes back.
            self.stale().insert(room.to_owned());
        }
        result
    }

    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError> {
        let session = participant.session;
        let screen_mids = self
            .announced
            .record(room, &participant.device, session, tracks);
        let body = AddParticipant {
            device: participant.device.clone(),
            role: role_body(participant.role),
            offer,
            subscribe: Vec::new(),
            screen_mids,
            session: Some(session.0),
        };
        let path = format!("/control/rooms/{}/participants", segment(room));
        let result = match self.send_json(Method::POST, &path, &body).await {
            Ok(resp) => answer_of(resp)
                .await
                .and_then(|a| a.ok_or_else(|| MediaError::Failed("the SFU sent no answer".into()))),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.announced
                .forget(room, &participant.device, Some(session));
        }
        result
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        let screen_mids = self.announced.record(room, device, session, tracks);
        let (kind, sdp) = match description {
            SessionDescription::Offer(s) => (SdpKind::Offer, s),
            SessionDescription::Answer(s) => (SdpKind::Answer, s),
        };
        let body = SdpBody {
            kind,
            sdp,
            screen_mids,
        };
        let path = participant_path(room, device, "/sdp", session);
        let resp = self.send_json(Method::POST, &path, &body).await?;
        answer_of(resp).await
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        let body: Vec<SubscriptionBody> =
            subscriptions.into_iter().map(subscription_body).collect();
        let path = participant_path(room, device, "/subscriptions", session);
        self.send_json(Method::PUT, &path, &body).await.map(drop)
    }

    async fn publish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        let path = participant_path(room, device, "/publications", session);
        self.send_json(Method::POST, &path, &PublishBody { source })
            .await
            .map(drop)
    }

    async fn unpublish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        let rest = format!("/publications/{}", source.as_str());
        let path = participant_path(room, device, &rest, session);
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    async fn remove_participant(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
    ) -> Result<(), MediaError> {
        self.announced.forget(room, device, Some(session));
        let path = participant_path(room, device, "", session);
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    fn events(&self) -> BoxStream<'static, MediaEvent> {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(follow_events(self.clone(), tx));
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed()
    }

    fn state(&self) -> NodeState {
        self.attachment.state()
    }

    async fn relay_export(
        &self,
        room: &str,
        edge_media_address: &str,
    ) -> Result<RelayExport, MediaError> {
        let path = format!("/control/rooms/{}/relay/exports", segment(room));
        let body = RelayExportRequest {
            edge_media_address: edge_media_address.to_owned(),
        };
        json_of(self.send_json(Method::POST, &path, &body).await?).await
    }

    async fn relay_import(
        &self,
        room: &str,
        export: &RelayExport,
    ) -> Result<RelayImported, MediaError> {
        let path = format!("/control/rooms/{}/relay/imports", segment(room));
        json_of(self.send_json(Method::POST, &path, export).await?).await
    }

    async fn relay_export_tracks(&self, link: &str) -> Result<RelayTracks, MediaError> {
        let path = format!("/control/relay/exports/{}", segment(link));
        json_of(self.send(self.request(Method::GET, &path)).await?).await
    }

    async fn relay_import_tracks(
        &self,
        link: &str,
        tracks: &RelayTracks,
    ) -> Result<RelayImported, MediaError> {
        let path = format!("/control/relay/imports/{}/tracks", segment(link));
        json_of(self.send_json(Method::PUT, &path, tracks).await?).await
    }

    async fn delete_relay_export(&self, link: &str) -> Result<(), MediaError> {
        let path = format!("/control/relay/exports/{}", segment(link));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    fn abandon_room(&self, room: &str) {
        if self.rooms().remove(room).is_some() {
            self.announced.forget_room(room);
            self.stale().insert(room.to_owned());
        }
    }

    fn node_of_room(&self, room: &str) -> Option<String> {
        self.rooms()
            .contains_key(room)
            .then(|| self.base.to_string())
    }

    fn nodes(&self) -> Vec<MediaNodeInfo> {
        vec![MediaNodeInfo {
            url: Some(self.base.to_string()),
            state: self.state(),
            registered: None,
            rooms: Vec::new(),
        }]
    }
}

/// Where the event stream stands: the node instance and the last sequence number read, and a
/// node reset not yet recovered from.
#[derive(Debug, Default)]
struct Cursor {
    instance: Option<String>,
    seq: u64,
    pending_reset: Option<ResetReason>,
}

/// Why [`read_events`] returned.
enum StreamEnd {
    /// The stream broke, ended or went silent: reconnect.
    Broken,
    /// Signaling stopped listening.
    Unheard,
}

/// Reads the node's event stream until signaling stops listening, reconnecting with backoff
/// and resuming after the last event read.
async fn follow_events(node: RemoteSfu, tx: mpsc::Sender<MediaEvent>) {
    let mut backoff = MIN_BACKOFF;
    let mut cursor = Cursor::default();
    while !tx.is_closed() {
        let query = EventsQuery {
            instance: cursor.instance.clone(),
            since: cursor.instance.as_ref().map(|_| cursor.seq),
        };
        let request = node.request(Method::GET, "/control/events").query(&query);
        match tokio::time::timeout(EVENT_STREAM_IDLE, node.execute(request)).await {
            Ok(Ok(resp)) => {
                tracing::info!(sfu = %node.base, "following the SFU's events");
                backoff = MIN_BACKOFF;
                if let StreamEnd::Unheard = read_events(&node, resp, &mut cursor, &tx).await {
                    return;
                }
                tracing::warn!(sfu = %node.base, "the SFU's event stream broke; resuming");
            }
            Ok(Err(e)) => {
                node.attachment.mark_detached();
                tracing::warn!(sfu = %node.base, error = %e, "SFU events unavailable");
            }
            Err(_) => {
                node.attachment.mark_detached();
                tracing::warn!(sfu = %node.base, "SFU event stream did not open in time");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reads one connection of the event stream line by line.
async fn read_events(
    node: &RemoteSfu,
    resp: reqwest::Response,
    cursor: &mut Cursor,
    tx: &mpsc::Sender<MediaEvent>,
) -> StreamEnd {
    let mut body = resp.bytes_stream();
    let mut line: Vec<u8> = Vec::new();
    let mut oversized = false;
    loop {
        let chunk = match tokio::time::timeout(EVENT_STREAM_IDLE, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(_)) | None) => return StreamEnd::Broken,
            Err(_) => {
                node.attachment.mark_detached();
                tracing::warn!(sfu = %node.base, "no heartbeat from the SFU; reconnecting");
                return StreamEnd::Broken;
            }
        };
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            let complete = part.last() == Some(&b'\n');
            if line.len() + part.len() > MAX_EVENT_LINE {
                oversized = true;
                line.clear();
            } else if !oversized {
                line.extend_from_slice(part);
            }
            if !complete {
                continue;
            }
            if oversized {
                tracing::warn!("dropped an oversized SFU event line");
            } else {
                match serde_json::from_slice::<StreamLine>(&line) {
                    Ok(stream_line) => {
                        node.attachment.mark_attached();
                        if !node.stale().is_empty() {
                            node.close_stale_rooms().await;
                        }
                        for event in on_line(node, cursor, stream_line).await {
                            if tx.send(event).await.is_err() {
                                return StreamEnd::Unheard;
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "unreadable SFU event line"),
                }
            }
            oversized = false;
            line.clear();
        }
    }
}

/// Applies one stream line to the cursor; returns the events to pass on.
async fn on_line(node: &RemoteSfu, cursor: &mut Cursor, line: StreamLine) -> Vec<MediaEvent> {
    let instance_changed = cursor
        .instance
        .as_deref()
        .is_some_and(|known| known != line.instance());
    if instance_changed {
        // A new process: whatever drain the old one was in is over.
        node.attachment.draining.store(false, Ordering::Relaxed);
    }
    let mut out = Vec::new();
    match line {
        StreamLine::Reset {
            instance,
            seq,
            reason,
        } => {
            tracing::warn!(sfu = %node.base, ?reason, "the SFU's events cannot resume: recovering its rooms");
            cursor.instance = Some(instance);
            cursor.seq = seq;
            cursor.pending_reset = Some(reason);
        }
        StreamLine::Heartbeat { instance, seq } => {
            if instance_changed || cursor.instance.is_none() {
                cursor.seq = seq;
            }
            if instance_changed {
                cursor.pending_reset = Some(ResetReason::InstanceChanged);
            }
            cursor.instance = Some(instance);
        }
        StreamLine::Event {
            instance,
            seq,
            event,
        } => {
            if instance_changed {
                cursor.pending_reset = Some(ResetReason::InstanceChanged);
                cursor.seq = seq.saturating_sub(1);
            }
            cursor.instance = Some(instance);
            if cursor.pending_reset.is_none() && seq <= cursor.seq {
                tracing::debug!(seq, "skipped a repeated SFU event");
                return out;
            }
            cursor.seq = seq;
            if let Some(reason) = cursor.pending_reset.take() {
                out.extend(recover(node, reason, &mut cursor.pending_reset).await);
            }
            out.extend(node.announced.event(event));
            return out;
        }
    }
    if let Some(reason) = cursor.pending_reset.take() {
        out.extend(recover(node, reason, &mut cursor.pending_reset).await);
    }
    out
}

/// After a node reset: re-creates every room this client created (closing it first when the
/// node may still hold it) and returns a [`MediaEvent::MediaReset`] for each. A room the node
/// could not be asked about is left for the next attempt (`pending` is set again).
async fn recover(
    node: &RemoteSfu,
    reason: ResetReason,
    pending: &mut Option<ResetReason>,
) -> Vec<MediaEvent> {
    let rooms: Vec<MediaRoomSpec> = node.rooms().values().cloned().collect();
    let why = match reason {
        ResetReason::InstanceChanged => MediaResetReason::MediaNodeRestarted,
        ResetReason::EventsLost => MediaResetReason::MediaEventsLost,
    };
    let mut out = Vec::with_capacity(rooms.len());
    for spec in rooms {
        node.announced.forget_room(&spec.room);
        if reason == ResetReason::EventsLost {
            let path = format!("/control/rooms/{}", segment(&spec.room));
            if let Err(e) = node.send(node.request(Method::DELETE, &path)).await {
                tracing::debug!(room = %spec.room, error = %e, "closing a room to reset it");
            }
        }
        match node.post_room(&spec).await {
            Ok(_) | Err(MediaError::Refused(_)) => {
                tracing::info!(room = %spec.room, reason = why.as_str(), "room re-created on the SFU");
                out.push(MediaEvent::MediaReset {
                    room: spec.room,
                    reason: why.to_owned(),
                });
            }
            Err(e) => {
                tracing::warn!(room = %spec.room, error = %e, "could not re-create a room on the SFU");
                *pending = Some(reason);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("room-1_a.b~"), "room-1_a.b~");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
