//! Routing key traffic: envelopes, acks and requests go only to devices in the sender's roster,
//! and envelopes must name the sender's own device, room, call and slot.

use super::{ConnId, Member, Output, Room};
use crate::protocol::{
    EnvelopeBody, ErrorCode, KeyAck, KeyAckNotice, KeyEnvelope, KeyRequest, KeyRequestNotice,
    ServerMessage, Validate as _,
};

/// Why a routed message (key envelope, ack, request) is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The connection is not (or no longer) a member.
    #[error("not joined")]
    NotJoined,
    /// The grants do not allow it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The envelope's shape or binding is wrong.
    #[error("{0}")]
    BadEnvelope(String),
    /// The addressed device is not in the sender's roster.
    #[error("device {0:?} is not in your roster")]
    NotInRoster(String),
}

impl RouteError {
    /// The code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            RouteError::NotJoined => ErrorCode::WrongState,
            RouteError::Forbidden(_) => ErrorCode::Forbidden,
            RouteError::BadEnvelope(_) => ErrorCode::BadEnvelope,
            RouteError::NotInRoster(_) => ErrorCode::NotInRoster,
        }
    }
}

impl Room {
    /// The member `device` if `conn` holds it.
    fn sender(&self, conn: ConnId, device: &str) -> Result<&Member, RouteError> {
        self.members
            .get(device)
            .filter(|m| m.conn == conn)
            .ok_or(RouteError::NotJoined)
    }

    /// A member that `from` may address, or `NotInRoster`.
    fn addressee(&self, from: &Member, to: &str) -> Result<&Member, RouteError> {
        self.members
            .get(to)
            .filter(|m| m.entry.device != from.entry.device && self.sees(&from.entry, &m.entry))
            .ok_or_else(|| RouteError::NotInRoster(to.to_string()))
    }

    /// Routes a key envelope to its recipient after checking who may send what to whom.
    pub fn route_envelope(
        &self,
        conn: ConnId,
        device: &str,
        envelope: KeyEnvelope,
    ) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        if !from.entry.can_publish {
            return Err(RouteError::Forbidden(
                "only devices that may publish send key envelopes",
            ));
        }
        envelope
            .validate()
            .map_err(|e| RouteError::BadEnvelope(e.to_string()))?;
        if envelope.sender != from.entry.device {
            return Err(RouteError::Forbidden(
                "envelope sender must be your own device",
            ));
        }
        if envelope.room != self.name {
            return Err(RouteError::BadEnvelope(
                "envelope names another room".into(),
            ));
        }
        if envelope.call != self.call {
            return Err(RouteError::BadEnvelope(
                "envelope names another call".into(),
            ));
        }
        if envelope.slot != from.entry.slot {
            return Err(RouteError::BadEnvelope(
                "envelope slot is not your slot".into(),
            ));
        }
        let to = self.addressee(from, &envelope.recipient)?;
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyEnvelope(Box::new(EnvelopeBody { envelope })),
        })
    }

    /// Routes a key acknowledgement to the device whose key it acknowledges.
    pub fn route_ack(&self, conn: ConnId, device: &str, ack: KeyAck) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        let to = self.addressee(from, &ack.to)?;
        if !to.entry.can_publish {
            return Err(RouteError::NotInRoster(ack.to));
        }
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyAck(KeyAckNotice {
                from: from.entry.device.clone(),
                generation: ack.generation,
                step: ack.step,
            }),
        })
    }

    /// Routes a key request to the sending device asked.
    pub fn route_request(
        &self,
        conn: ConnId,
        device: &str,
        req: KeyRequest,
    ) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        let to = self.addressee(from, &req.to)?;
        if !to.entry.can_publish {
            return Err(RouteError::NotInRoster(req.to));
        }
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyRequest(KeyRequestNotice {
                from: from.entry.device.clone(),
                generation: req.generation,
            }),
        })
    }
}
