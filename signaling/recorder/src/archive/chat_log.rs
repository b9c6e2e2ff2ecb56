//! A session's chat, as JSON lines cut into parts: one line per message the recorder received
//! (`{"at","pts_ms","from","identity","text"}`; a reaction has `"reaction"` with its emoji, and
//! a message it could not open `"unreadable"` with the reason, in place of `text`), each part closed at [`CHAT_PART_BYTES`] so the plaintext held in memory stays
//! bounded. The session encrypts and stores each closed part (`chat-pNNN.jsonl.age`) like a
//! track's parts.

use serde::{Deserialize, Serialize};

use super::timefmt;
use crate::sink::{ChatBody, ChatEntry};

/// A chat part is closed once it holds this many bytes.
pub const CHAT_PART_BYTES: usize = 1 << 20;

/// One line of a chat part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatLine {
    /// When the recorder received it (RFC 3339).
    pub at: String,
    /// Milliseconds from the session's start (the media files' time line).
    pub pts_ms: u64,
    /// The sending device.
    pub from: String,
    /// Its identity (display name) from the roster, when the recorder had it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identity: Option<String>,
    /// The message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// A reaction's emoji (then there is no `text`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reaction: Option<String>,
    /// Why it could not be read (then there is no `text`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unreadable: Option<String>,
}

/// A closed part, to encrypt and store.
#[derive(Debug)]
pub struct ClosedChatPart {
    /// Part number, from 1.
    pub part: u32,
    /// Messages in it.
    pub messages: u64,
    /// First and last message's time from the session's start, milliseconds.
    pub first_pts_ms: u64,
    /// See `first_pts_ms`.
    pub last_pts_ms: u64,
    /// The JSON lines.
    pub jsonl: Vec<u8>,
}

/// The chat being written.
#[derive(Debug, Default)]
pub struct ChatLog {
    part: u32,
    buf: Vec<u8>,
    in_part: u64,
    first_pts_ms: u64,
    last_pts_ms: u64,
    messages: u64,
    unreadable: u64,
}

impl ChatLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `entry` (from `identity`, when known); returns the part it closed, if any.
    pub fn push(&mut self, entry: ChatEntry, identity: Option<String>) -> Option<ClosedChatPart> {
        let pts_ms = u64::try_from(entry.pts.as_millis()).unwrap_or(u64::MAX);
        let (text, reaction, unreadable) = match entry.body {
            ChatBody::Text(t) => (Some(t), None, None),
            ChatBody::Reaction(emoji) => (None, Some(emoji), None),
            ChatBody::Unreadable(why) => {
                self.unreadable += 1;
                (None, None, Some(why))
            }
        };
        let line = ChatLine {
            at: timefmt::format(entry.at),
            pts_ms,
            from: entry.from,
            identity,
            text,
            reaction,
            unreadable,
        };
        if self.in_part == 0 {
            self.first_pts_ms = pts_ms;
        }
        self.last_pts_ms = pts_ms;
        serde_json::to_writer(&mut self.buf, &line).expect("a chat line serializes");
        self.buf.push(b'\n');
        self.in_part += 1;
        self.messages += 1;
        (self.buf.len() >= CHAT_PART_BYTES).then(|| self.cut())
    }

    /// Closes the part being written, if it holds anything (at the session's end).
    pub fn close(&mut self) -> Option<ClosedChatPart> {
        (self.in_part > 0).then(|| self.cut())
    }

    fn cut(&mut self) -> ClosedChatPart {
        self.part += 1;
        let part = ClosedChatPart {
            part: self.part,
            messages: self.in_part,
            first_pts_ms: self.first_pts_ms,
            last_pts_ms: self.last_pts_ms,
            jsonl: std::mem::take(&mut self.buf),
        };
        self.in_part = 0;
        part
    }

    /// Messages logged, all parts.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Of them, those that could not be read.
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn entry(text: &str) -> ChatEntry {
        ChatEntry {
            from: "alice".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            pts: Duration::from_millis(1500),
            body: ChatBody::Text(text.into()),
        }
    }

    #[test]
    fn chat_parts_close_at_the_bound_and_hold_every_line() {
        let mut log = ChatLog::new();
        let text = "x".repeat(3000);
        let mut parts = Vec::new();
        for _ in 0..400 {
            parts.extend(log.push(entry(&text), Some("Alice".into())));
        }
        parts.extend(log.close());
        assert!(parts.len() >= 2, "1.2 MB of chat is more than one part");
        assert_eq!(parts.iter().map(|p| p.messages).sum::<u64>(), 400);
        assert!(
            parts
                .iter()
                .all(|p| p.jsonl.len() <= CHAT_PART_BYTES + 4096)
        );
        let lines: Vec<ChatLine> = parts
            .iter()
            .flat_map(|p| p.jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()))
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 400);
        assert_eq!(lines[0].identity.as_deref(), Some("Alice"));
        assert_eq!(lines[0].pts_ms, 1500);
        assert_eq!(parts.iter().map(|p| p.part).collect::<Vec<_>>()[0], 1);
    }

    #[test]
    fn an_unreadable_message_is_logged_with_its_reason_and_counted() {
        let mut log = ChatLog::new();
        log.push(
            ChatEntry {
                body: ChatBody::Unreadable("no key".into()),
                ..entry("")
            },
            None,
        );
        let part = log.close().unwrap();
        let line: ChatLine = serde_json::from_slice(part.jsonl.trim_ascii_end()).unwrap();
        assert_eq!(line.text, None);
        assert_eq!(line.unreadable.as_deref(), Some("no key"));
        assert_eq!((log.messages(), log.unreadable()), (1, 1));
        assert!(log.close().is_none());
    }
}
