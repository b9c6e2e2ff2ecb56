//! The key policy on the wire: which [`KeyInput`]s a server message carries, and which client
//! message a [`KeyOutput`] is. One mapping for every native client (load generator, tests,
//! recorder), so none of them re-reads the protocol its own way.

use crate::protocol::{
    ClientMessage, EnvelopeBody, KeyAck, KeyAckNotice, KeyRequest, KeyRequestNotice,
    MembershipAction, MembershipNotice, RosterDelta, ServerMessage,
};

use super::{KeyInput, KeyOutput, Membership, RosterDevice};

/// The key policy's inputs in a server message (none for messages without key news).
pub fn key_inputs(message: &ServerMessage) -> Vec<KeyInput> {
    match message {
        ServerMessage::Roster(RosterDelta { added, removed, .. }) => {
            let mut inputs: Vec<KeyInput> = added
                .iter()
                .map(|entry| KeyInput::RosterAdded(RosterDevice::from(entry)))
                .collect();
            if !removed.is_empty() {
                inputs.push(KeyInput::RosterRemoved(removed.clone()));
            }
            inputs
        }
        ServerMessage::Membership(MembershipNotice {
            action,
            joined,
            left,
            ..
        }) => vec![KeyInput::Membership(match action {
            MembershipAction::Ratchet => Membership::Ratchet {
                joined: joined.clone(),
            },
            MembershipAction::Rekey => Membership::Rekey { left: left.clone() },
        })],
        ServerMessage::KeyEnvelope(body) => vec![KeyInput::Envelope(body.envelope.clone())],
        ServerMessage::KeyAck(KeyAckNotice {
            from,
            generation,
            step,
        }) => vec![KeyInput::Ack {
            from: from.clone(),
            generation: *generation,
            step: *step,
        }],
        ServerMessage::KeyRequest(KeyRequestNotice { from, .. }) => {
            vec![KeyInput::Request { from: from.clone() }]
        }
        _ => Vec::new(),
    }
}

/// The client message an output asks to send (`None` for outputs that are not messages: keys
/// to install or forget).
pub fn key_message(output: &KeyOutput) -> Option<ClientMessage> {
    match output {
        KeyOutput::SendEnvelope { envelope, .. } => {
            Some(ClientMessage::KeyEnvelope(EnvelopeBody {
                envelope: envelope.clone(),
            }))
        }
        KeyOutput::SendAck {
            to,
            generation,
            step,
        } => Some(ClientMessage::KeyAck(KeyAck {
            to: to.clone(),
            generation: *generation,
            step: *step,
        })),
        KeyOutput::SendRequest { to, generation } => Some(ClientMessage::KeyRequest(KeyRequest {
            to: to.clone(),
            generation: *generation,
        })),
        _ => None,
    }
}
