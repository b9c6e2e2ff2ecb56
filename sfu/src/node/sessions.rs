//! Media sessions named by the id their caller (signaling) gives each one: the ids of
//! sessions removed on request, kept so that a late `add` of one of them (a join whose
//! connection was closed while its offer was on the way) cannot bring it back.
//!
//! Ids are chosen at random by the caller, so one set serves every room of the node. It is
//! bounded: the oldest ids are forgotten first, long after any request about them could still
//! arrive.

use std::collections::{HashSet, VecDeque};

/// How many ended session ids the node remembers.
pub(crate) const ENDED_SESSIONS_KEPT: usize = 16_384;

/// The ids of media sessions removed on request, oldest first.
#[derive(Debug, Default)]
pub(crate) struct EndedSessions {
    order: VecDeque<u64>,
    ids: HashSet<u64>,
}

impl EndedSessions {
    /// Remembers that session `id` ended.
    pub(crate) fn insert(&mut self, id: u64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > ENDED_SESSIONS_KEPT
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }

    /// Whether session `id` ended (and is still remembered).
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_session_is_remembered_until_the_set_is_full() {
        let mut ended = EndedSessions::default();
        ended.insert(1);
        ended.insert(1);
        assert!(ended.contains(1));
        assert!(!ended.contains(2));
        for id in 2..=ENDED_SESSIONS_KEPT as u64 {
            ended.insert(id);
        }
        assert!(ended.contains(1), "exactly full: nothing forgotten yet");
        ended.insert(u64::MAX);
        assert!(!ended.contains(1), "the oldest goes first");
        assert!(ended.contains(2) && ended.contains(u64::MAX));
    }
}
