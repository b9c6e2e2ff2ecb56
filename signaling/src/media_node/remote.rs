//! A separate `sfu` process driven over its HTTP control API (`sfu/src/control/mod.rs`
//! documents it): JSON requests with the shared bearer secret, events as newline-delimited JSON
//! from `GET /control/events`, reconnected with backoff when the stream breaks. Use `https://`
//! where the control port crosses hosts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use sfu_control_api::{
    AddParticipant, AnswerBody, CreateRoom, ErrorBody, NodeEvent, SdpBody, SdpKind,
    SubscriptionBody,
};
use tokio::sync::mpsc;

use super::translate::{Announcements, role_body, room_kind_body, subscription_body};
use super::{
    MediaError, MediaEvent, MediaNode, MediaRoomSpec, ParticipantSpec, SessionDescription,
};
use crate::auth::Secret;
use crate::protocol::{Subscription, TrackAnnouncement};

/// Longest a control request may take (an SDP answer needs the node to set up a peer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
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
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.secret.expose())
    }

    /// Sends a request and maps the node's status codes to [`MediaError`]s.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, MediaError> {
        let resp = req
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| MediaError::Failed(format!("SFU unreachable: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let reason = resp
            .json::<ErrorBody>()
            .await
            .map_or_else(|_| status.to_string(), |b| b.error);
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

async fn answer_of(resp: reqwest::Response) -> Result<Option<String>, MediaError> {
    resp.json::<AnswerBody>()
        .await
        .map(|b| b.answer)
        .map_err(|e| MediaError::Failed(format!("SFU answer unreadable: {e}")))
}

#[async_trait]
impl MediaNode for RemoteSfu {
    async fn create_room(&self, room: &MediaRoomSpec) -> Result<(), MediaError> {
        let body = CreateRoom {
            room: room.room.clone(),
            kind: room_kind_body(room.kind),
            loudest_n: None,
            last_n: None,
        };
        self.send_json(Method::POST, "/control/rooms", &body)
            .await
            .map(drop)
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        self.announced.forget_room(room);
        let path = format!("/control/rooms/{}", segment(room));
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError> {
        let screen_mids = self.announced.record(room, &participant.device, tracks);
        let body = AddParticipant {
            device: participant.device.clone(),
            role: role_body(participant.role),
            offer,
            subscribe: Vec::new(),
            screen_mids,
        };
        let path = format!("/control/rooms/{}/participants", segment(room));
        let result = match self.send_json(Method::POST, &path, &body).await {
            Ok(resp) => answer_of(resp)
                .await
                .and_then(|a| a.ok_or_else(|| MediaError::Failed("the SFU sent no answer".into()))),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.announced.forget(room, &participant.device);
        }
        result
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        let screen_mids = self.announced.record(room, device, tracks);
        let (kind, sdp) = match description {
            SessionDescription::Offer(s) => (SdpKind::Offer, s),
            SessionDescription::Answer(s) => (SdpKind::Answer, s),
        };
        let body = SdpBody {
            kind,
            sdp,
            screen_mids,
        };
        let path = format!(
            "/control/rooms/{}/participants/{}/sdp",
            segment(room),
            segment(device)
        );
        let resp = self.send_json(Method::POST, &path, &body).await?;
        answer_of(resp).await
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        let body: Vec<SubscriptionBody> =
            subscriptions.into_iter().map(subscription_body).collect();
        let path = format!(
            "/control/rooms/{}/participants/{}/subscriptions",
            segment(room),
            segment(device)
        );
        self.send_json(Method::PUT, &path, &body).await.map(drop)
    }

    async fn remove_participant(&self, room: &str, device: &str) -> Result<(), MediaError> {
        self.announced.forget(room, device);
        let path = format!(
            "/control/rooms/{}/participants/{}",
            segment(room),
            segment(device)
        );
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
}

/// Reads the node's event stream until signaling stops listening, reconnecting with backoff.
async fn follow_events(node: RemoteSfu, tx: mpsc::Sender<MediaEvent>) {
    let mut backoff = MIN_BACKOFF;
    while !tx.is_closed() {
        match node
            .send(node.request(Method::GET, "/control/events"))
            .await
        {
            Ok(resp) => {
                tracing::info!(sfu = %node.base, "following the SFU's events");
                backoff = MIN_BACKOFF;
                let mut body = resp.bytes_stream();
                let mut line: Vec<u8> = Vec::new();
                let mut oversized = false;
                while let Some(chunk) = body.next().await {
                    let Ok(chunk) = chunk else { break };
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
                            match serde_json::from_slice::<NodeEvent>(&line) {
                                Ok(event) => {
                                    if let Some(e) = node.announced.event(event)
                                        && tx.send(e).await.is_err()
                                    {
                                        return;
                                    }
                                }
                                Err(e) => tracing::debug!(error = %e, "unreadable SFU event"),
                            }
                        }
                        oversized = false;
                        line.clear();
                    }
                }
                tracing::warn!(sfu = %node.base, "the SFU's event stream ended; reconnecting");
            }
            Err(e) => tracing::warn!(sfu = %node.base, error = %e, "SFU events unavailable"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
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
