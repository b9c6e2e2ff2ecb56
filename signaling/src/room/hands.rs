//! Raised hands: which members have a hand up, in the order the hands went up (kept for
//! `joined.hands`), and the `hand` relay, stamped with the sender's device, to the sender and
//! the members that see it. A hand lives in its [`Member`](super::Member): it goes with the
//! device when the device leaves, and the others drop it with the roster removal.

use super::{ConnId, Output, Room};
use crate::protocol::{DeviceHand, RaisedHand, RosterEntry, ServerMessage};

impl Room {
    /// Raises or lowers `device`'s own hand. Nothing happens when `conn` does not hold
    /// `device` (a stale connection) or when the hand already is where it is asked to be (a
    /// raised hand keeps its place in the queue).
    pub fn set_hand(&mut self, conn: ConnId, device: &str, raised: bool) -> Vec<Output> {
        if self.members.get(device).is_none_or(|m| m.conn != conn) {
            return Vec::new();
        }
        self.move_hand(device, raised, None)
    }

    /// A moderator (`by`) lowers `device`'s hand; `None` when `device` is not in the room.
    pub(super) fn lower_hand_of(&mut self, device: &str, by: &str) -> Option<Vec<Output>> {
        self.members
            .contains_key(device)
            .then(|| self.move_hand(device, false, Some(by)))
    }

    fn move_hand(&mut self, device: &str, raised: bool, lowered_by: Option<&str>) -> Vec<Output> {
        let order = raised.then_some(self.hands_raised + 1);
        let Some(member) = self
            .members
            .get_mut(device)
            .filter(|m| m.hand.is_some() != raised)
        else {
            return Vec::new();
        };
        member.hand = order;
        let (entry, own) = (member.entry.clone(), member.conn);
        if raised {
            self.hands_raised += 1;
        }
        let mut to = self.watchers(&entry, |_| true);
        to.push(own);
        vec![Output::Send {
            to,
            message: ServerMessage::Hand(DeviceHand {
                device: entry.device,
                raised,
                order,
                lowered_by: lowered_by.map(str::to_owned),
            }),
        }]
    }

    /// The raised hands `viewer` sees, earliest first.
    pub(super) fn hands_seen_by(&self, viewer: &RosterEntry) -> Vec<RaisedHand> {
        let mut hands: Vec<RaisedHand> = self
            .members
            .values()
            .filter(|m| self.sees(viewer, &m.entry))
            .filter_map(|m| {
                m.hand.map(|order| RaisedHand {
                    device: m.entry.device.clone(),
                    order,
                })
            })
            .collect();
        hands.sort_by_key(|h| h.order);
        hands
    }
}
