//! End-to-end encrypted chat (`chat`, both directions). The sealed message is `e2ee_frames`'
//! own wire type (docs/e2ee.md §6); the service checks its shape and size, stamps the sender's
//! device and relays it, unopened, to the devices that see the sender.

use serde::{Deserialize, Serialize};

pub use e2ee_frames::chat::{MAX_CHAT_CIPHERTEXT_BYTES, SealedChat};

use super::keys::Validate;
use super::shape::ShapeError;

/// `chat` messages accepted back to back; then [`CHAT_PER_SECOND`].
pub const CHAT_BURST: u32 = 10;

/// Sustained `chat` messages per second per connection.
pub const CHAT_PER_SECOND: u32 = 2;

/// Body of the client's `chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatBody {
    /// The sealed message.
    pub chat: SealedChat,
}

/// Body of the server's `chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatNotice {
    /// The sending device, as the service authenticated it.
    pub from: String,
    /// The sealed message, untouched.
    pub chat: SealedChat,
}

impl Validate for SealedChat {
    /// Version 1 and a `ct` of 16 (the tag) to [`MAX_CHAT_CIPHERTEXT_BYTES`] bytes.
    fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        let len = self.ct.len();
        if len > MAX_CHAT_CIPHERTEXT_BYTES {
            return Err(ShapeError::TooLong {
                field: "ct",
                max: MAX_CHAT_CIPHERTEXT_BYTES,
                got: len,
            });
        }
        if len < e2ee_frames::chat::CHAT_TAG_LEN {
            return Err(ShapeError::Range("ct"));
        }
        Ok(())
    }
}
