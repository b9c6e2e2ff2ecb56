//! The recorded room's chat: every `chat` the service relays to the recorder is opened with the
//! sender's key (the recorder holds it as a key recipient, as it does for frames) and handed to
//! the archive in the order received, reactions (`0x01` + emoji) as reactions. A message whose key has not arrived waits for it up to
//! [`KEY_WAIT`] (as the web client does), then is archived as unreadable with the reason, never
//! dropped.

use std::time::{Duration, Instant, SystemTime};

use call_client::chat::{ChatKeyring, ChatOpenError, ChatScope};
use call_client::keys::ReceiverKey;
use call_client::protocol::ChatNotice;

use crate::sink::{ChatBody, ChatEntry};

/// How long a message waits for its sender's key before it is archived as unreadable.
pub const KEY_WAIT: Duration = Duration::from_secs(5);

struct Waiting {
    notice: ChatNotice,
    at: SystemTime,
    pts: Duration,
    since: Instant,
}

/// Opens the room's chat for the archive.
pub struct ChatReader {
    room: String,
    call: String,
    started: Instant,
    keyring: ChatKeyring,
    waiting: Vec<Waiting>,
}

impl ChatReader {
    /// The chat of call `call` in `room`, on a time line that starts at `started`.
    pub fn new(room: &str, call: &str, started: Instant) -> Self {
        ChatReader {
            room: room.to_owned(),
            call: call.to_owned(),
            started,
            keyring: ChatKeyring::new(),
            waiting: Vec::new(),
        }
    }

    /// A relayed message received at `now`: its entry, unless it waits for its key.
    pub fn received(&mut self, notice: ChatNotice, now: Instant) -> Option<ChatEntry> {
        let waiting = Waiting {
            notice,
            at: SystemTime::now(),
            pts: now.saturating_duration_since(self.started),
            since: now,
        };
        self.try_open(waiting)
    }

    /// A key the key manager installed: the messages that waited for it.
    pub fn key_installed(&mut self, key: &ReceiverKey) -> Vec<ChatEntry> {
        self.keyring.add_key(key);
        let (theirs, others) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.notice.from == key.device);
        self.waiting = others;
        theirs
            .into_iter()
            .filter_map(|w: Waiting| self.try_open(w))
            .collect()
    }

    /// A device left: its keys go (messages it sent before stay waiting until they expire).
    pub fn forget(&mut self, device: &str) {
        self.keyring.forget(device);
    }

    /// The messages that waited longer than [`KEY_WAIT`] at `now`, as unreadable.
    pub fn expire(&mut self, now: Instant) -> Vec<ChatEntry> {
        let (expired, waiting) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| now.saturating_duration_since(w.since) >= KEY_WAIT);
        self.waiting = waiting;
        expired
            .into_iter()
            .map(|w: Waiting| {
                let why = format!(
                    "no key for generation {} step {} within {} s",
                    w.notice.chat.generation,
                    w.notice.chat.step,
                    KEY_WAIT.as_secs()
                );
                entry(w, ChatBody::Unreadable(why))
            })
            .collect()
    }

    /// Messages waiting for their key at the session's end, as unreadable.
    pub fn drain(&mut self) -> Vec<ChatEntry> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|w| {
                let why = "no key for it before the session ended".to_owned();
                entry(w, ChatBody::Unreadable(why))
            })
            .collect()
    }

    fn try_open(&mut self, w: Waiting) -> Option<ChatEntry> {
        let scope = ChatScope {
            room: &self.room,
            call: &self.call,
        };
        match self.keyring.open(scope, &w.notice.from, &w.notice.chat) {
            Ok(plaintext) => Some(entry(w, body_of(&plaintext))),
            Err(ChatOpenError::NoKey { .. }) => {
                self.waiting.push(w);
                None
            }
            Err(ChatOpenError::Sealed(e)) => Some(entry(w, ChatBody::Unreadable(e.to_string()))),
            Err(e) => Some(entry(w, ChatBody::Unreadable(e.to_string()))),
        }
    }
}

/// The kind byte of a reaction (docs/e2ee.md §6).
const REACTION_KIND: u8 = 0x01;

/// What an opened plaintext is: a reaction (`0x01` + emoji), text, or a kind this recorder does
/// not know (another leading control byte), kept as unreadable with the byte named.
fn body_of(plaintext: &[u8]) -> ChatBody {
    match plaintext.first() {
        Some(&REACTION_KIND) => {
            ChatBody::Reaction(String::from_utf8_lossy(&plaintext[1..]).into_owned())
        }
        Some(&b) if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => {
            ChatBody::Unreadable(format!("a chat message of unknown kind 0x{b:02x}"))
        }
        _ => ChatBody::Text(String::from_utf8_lossy(plaintext).into_owned()),
    }
}

fn entry(w: Waiting, body: ChatBody) -> ChatEntry {
    ChatEntry {
        from: w.notice.from,
        at: w.at,
        pts: w.pts,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_text_and_an_unknown_kind_are_told_apart() {
        assert_eq!(
            body_of("\u{1}👍".as_bytes()),
            ChatBody::Reaction("👍".into())
        );
        assert_eq!(body_of(b"hello"), ChatBody::Text("hello".into()));
        assert!(matches!(body_of(b"\x02x"), ChatBody::Unreadable(why) if why.contains("0x02")));
    }
}
