//! Several SFU nodes behind one [`MediaNode`]: each room lives on one node, chosen when the
//! room is created (the node with the fewest rooms placed here, ties to the first listed), and
//! every later call for the room goes to that node. Events of all nodes are merged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt as _};

use super::{
    MediaError, MediaEvent, MediaNode, MediaRoomSpec, ParticipantSpec, SessionDescription,
};
use crate::protocol::{ReceiveSlotCounts, Subscription, TrackAnnouncement};

/// Rooms spread over several media nodes.
pub struct SfuPool {
    nodes: Vec<Arc<dyn MediaNode>>,
    /// Room name → index into `nodes`.
    placement: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for SfuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuPool")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl SfuPool {
    /// A pool over `nodes` (at least one).
    pub fn new(nodes: Vec<Arc<dyn MediaNode>>) -> Result<Self, MediaError> {
        if nodes.is_empty() {
            return Err(MediaError::Failed("no SFU node configured".into()));
        }
        Ok(SfuPool {
            nodes,
            placement: Mutex::default(),
        })
    }

    fn placement(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding the lock leaves a usable map.
        self.placement
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The node index a new room goes to: the fewest rooms placed.
    fn choose(&self) -> usize {
        let placement = self.placement();
        let mut load = vec![0usize; self.nodes.len()];
        for &i in placement.values() {
            load[i] += 1;
        }
        (0..load.len()).min_by_key(|&i| load[i]).unwrap_or(0)
    }

    fn node_of(&self, room: &str) -> Result<Arc<dyn MediaNode>, MediaError> {
        self.placement()
            .get(room)
            .map(|&i| self.nodes[i].clone())
            .ok_or(MediaError::UnknownRoom)
    }
}

#[async_trait]
impl MediaNode for SfuPool {
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let i = self.choose();
        let counts = self.nodes[i].create_room(room).await?;
        self.placement().insert(room.room.clone(), i);
        Ok(counts)
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        let node = self.node_of(room)?;
        self.placement().remove(room);
        node.close_room(room).await
    }

    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError> {
        self.node_of(room)?
            .add_participant(room, participant, offer, tracks)
            .await
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        self.node_of(room)?
            .renegotiate(room, device, description, tracks)
            .await
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        self.node_of(room)?
            .set_subscriptions(room, device, subscriptions)
            .await
    }

    async fn remove_participant(&self, room: &str, device: &str) -> Result<(), MediaError> {
        match self.node_of(room) {
            Ok(node) => node.remove_participant(room, device).await,
            // Idempotent: a room no node holds has no participant to remove.
            Err(_) => Ok(()),
        }
    }

    fn events(&self) -> BoxStream<'static, MediaEvent> {
        stream::select_all(self.nodes.iter().map(|n| n.events())).boxed()
    }

    /// Attached while every node is: a room placed on an unreachable node has no media.
    fn is_attached(&self) -> bool {
        self.nodes.iter().all(|n| n.is_attached())
    }
}
