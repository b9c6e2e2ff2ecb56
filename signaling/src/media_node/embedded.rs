//! An SFU node running inside the signaling process (`signaling dev` and tests): calls go
//! straight to its [`NodeHandle`], events come from its broadcast channel.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use sfu::node::{
    NodeConfig, NodeError, NodeHandle, Observer, RequestedSource, SubscriptionRequest, start_node,
};
use sfu::ops::{OpsState, SfuMetrics};
use sfu::transport::TransportConfig;
use tokio::sync::broadcast::error::RecvError;

use super::translate::{Announcements, create_room_body, receive_slot_counts, subscription_body};
use super::{
    MediaError, MediaEvent, MediaNode, MediaRoomSpec, MediaSessionId, ParticipantSpec,
    PublishSource, SessionDescription,
};
use crate::policy::Role;
use crate::protocol::{ReceiveSlotCounts, Subscription, TrackAnnouncement};

/// Why the embedded SFU did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedStartError {
    /// Its metrics registry could not be built.
    #[error("SFU metrics: {0}")]
    Metrics(String),
    /// Its UDP socket could not be bound.
    #[error("SFU media transport: {0}")]
    Transport(String),
}

/// An SFU node in this process.
#[derive(Clone)]
pub struct EmbeddedSfu {
    node: NodeHandle,
    metrics: Arc<SfuMetrics>,
    announced: Arc<Announcements>,
}

impl std::fmt::Debug for EmbeddedSfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSfu")
            .field("udp", &self.node.udp_addr())
            .finish()
    }
}

impl EmbeddedSfu {
    /// Starts a node with `transport` (use [`TransportConfig::loopback`] for development and
    /// tests: 127.0.0.1 only) on the current tokio runtime.
    pub async fn start(transport: TransportConfig) -> Result<Self, EmbeddedStartError> {
        let metrics =
            Arc::new(SfuMetrics::new().map_err(|e| EmbeddedStartError::Metrics(e.to_string()))?);
        let node = start_node(
            NodeConfig {
                transport,
                forwarding: Default::default(),
            },
            Some(metrics.clone() as Arc<dyn Observer>),
        )
        .await
        .map_err(|e| EmbeddedStartError::Transport(e.to_string()))?;
        Ok(EmbeddedSfu {
            node,
            metrics,
            announced: Arc::default(),
        })
    }

    /// The node itself (its UDP address, counters, drain).
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// The SFU's `/metrics`, `/healthz` and `/readyz`, to be mounted (signaling serves them
    /// under `/sfu/`).
    pub fn ops_router(&self) -> axum::Router {
        sfu::ops::router(OpsState {
            node: self.node.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

#[async_trait]
impl MediaNode for EmbeddedSfu {
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let policy = sfu::control::room_policy(&create_room_body(room))
            .map_err(|e| MediaError::Refused(e.to_string()))?;
        let counts = self
            .node
            .create_room_with(&room.room, policy, room.receive_slots)
            .await
            .map_err(media_error)?;
        // Through the control API's shape, so the embedded and the remote node agree.
        Ok(counts.map(|c| {
            receive_slot_counts(sfu_control_api::ReceiveSlotCounts {
                audio: c.audio,
                video: c.video,
                screen: c.screen,
            })
        }))
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        self.announced.forget_room(room);
        self.node.close_room(room).await.map_err(media_error)
    }

    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError> {
        let session = participant.session;
        let screen = self
            .announced
            .record(room, &participant.device, session, tracks);
        let answer = self
            .node
            .add_participant(
                room,
                &participant.device,
                node_role(participant.role),
                offer,
                Vec::new(),
                &screen,
                Some(session.0),
            )
            .await;
        if answer.is_err() {
            self.announced
                .forget(room, &participant.device, Some(session));
        }
        answer.map_err(media_error)
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        let screen = self.announced.record(room, device, session, tracks);
        let description = match description {
            SessionDescription::Offer(sdp) => sfu::node::SessionDescription::Offer(sdp),
            SessionDescription::Answer(sdp) => sfu::node::SessionDescription::Answer(sdp),
        };
        self.node
            .renegotiate(room, device, description, &screen, Some(session.0))
            .await
            .map_err(media_error)
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        self.node
            .set_subscriptions(
                room,
                device,
                subscriptions.into_iter().map(subscription).collect(),
                Some(session.0),
            )
            .await
            .map_err(media_error)
    }

    async fn publish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        self.node
            .publish(room, device, requested(source), Some(session.0))
            .await
            .map_err(media_error)
    }

    async fn unpublish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        self.node
            .unpublish(room, device, requested(source), Some(session.0))
            .await
            .map_err(media_error)
    }

    async fn remove_participant(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
    ) -> Result<(), MediaError> {
        self.announced.forget(room, device, Some(session));
        self.node
            .remove_participant(room, device, Some(session.0))
            .await
            .map_err(media_error)
    }

    fn events(&self) -> BoxStream<'static, MediaEvent> {
        let announced = self.announced.clone();
        stream::unfold(self.node.events(), move |mut rx| {
            let announced = announced.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            // The same wire event a remote node sends, so both translate alike.
                            if let Some(e) = announced.event(event) {
                                return Some((e, rx));
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "signaling fell behind the SFU's events");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }
}

/// The node's role for a participant.
fn node_role(role: Role) -> sfu_forwarding::Role {
    match role {
        Role::Caller => sfu_forwarding::Role::Caller,
        Role::Presenter => sfu_forwarding::Role::Presenter,
        Role::Viewer => sfu_forwarding::Role::Viewer,
        Role::Recorder => sfu_forwarding::Role::Recorder,
    }
}

/// A client's subscription as the node takes it (through the control API's body, so the
/// embedded and the remote node read a subscription the same way).
fn subscription(s: Subscription) -> SubscriptionRequest {
    subscription_body(s).into()
}

/// A node refusal as signaling reports it.
fn requested(source: PublishSource) -> RequestedSource {
    match source {
        PublishSource::Screen => RequestedSource::Screen,
    }
}

fn media_error(e: NodeError) -> MediaError {
    match e {
        other @ (NodeError::AlreadyPublished | NodeError::NotPublished) => {
            MediaError::Publication(other.to_string())
        }
        NodeError::UnknownRoom => MediaError::UnknownRoom,
        NodeError::UnknownParticipant => MediaError::UnknownParticipant,
        other @ (NodeError::Transport(_)
        | NodeError::UnknownTrack
        | NodeError::Refused(_)
        | NodeError::SlotRoom
        | NodeError::PublishNotAllowed
        | NodeError::SessionEnded) => MediaError::Refused(other.to_string()),
        other => MediaError::Failed(other.to_string()),
    }
}
