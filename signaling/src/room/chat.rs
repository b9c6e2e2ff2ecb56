//! Chat: a sealed message (docs/e2ee.md §6), opaque to the service, relayed with the sender's
//! device stamped to every other member that sees the sender. Only devices that may publish
//! hold a sender key to seal with, so only they send chat.

use super::keys::RouteError;
use super::{ConnId, Output, Room};
use crate::protocol::{ChatNotice, SealedChat, ServerMessage};

impl Room {
    /// Relays `chat` from `device` (held by `conn`) to the members that see it.
    pub fn route_chat(
        &self,
        conn: ConnId,
        device: &str,
        chat: SealedChat,
    ) -> Result<Vec<Output>, RouteError> {
        let from = self
            .members
            .get(device)
            .filter(|m| m.conn == conn)
            .ok_or(RouteError::NotJoined)?;
        if !from.entry.can_publish {
            return Err(RouteError::Forbidden(
                "only devices that may publish hold a key to seal chat with",
            ));
        }
        let to = self.watchers(&from.entry, |_| true);
        if to.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Output::Send {
            to,
            message: ServerMessage::Chat(ChatNotice {
                from: from.entry.device.clone(),
                chat,
            }),
        }])
    }
}
