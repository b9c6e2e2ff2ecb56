//! The archive: what the recorder keeps of each session, encrypted to the organization's key,
//! signed and chained, under retention (docs/architecture.md, "Recorder archive").
//!
//! | module | what it holds |
//! |---|---|
//! | `store` | the [`Store`](store::Store) trait (named blobs, atomic put, a lock) and the local directory store |
//! | `seal` | age encryption to the organization's key, SHA-256 |
//! | `track_part` | one track's WebM muxer (libwebm), cut into bounded parts |
//! | `session` | [`LocalArchive`](session::LocalArchive): the sink the live side writes sessions into |
//! | `manifest` | the encrypted per-session manifest |
//! | `chain` | the signed, hash-linked `chain.jsonl` |
//! | `index` | the chain folded into one record per session |
//! | `retention` | sweep, hold, release |
//! | `verify` | the check with the recorder's public key only |
//! | `export` | decryption with the organization's key into playable files |
//! | `timefmt` | RFC 3339 timestamps and session ids |

pub mod chain;
pub mod chat_log;
pub mod export;
pub mod index;
pub mod manifest;
pub mod retention;
pub mod seal;
pub mod session;
pub mod store;
pub mod timefmt;
pub mod track_part;
pub mod verify;

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading or writing the store failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What failed.
        source: std::io::Error,
    },
    /// The chain is broken, or refuses the change asked for.
    #[error("chain: {0}")]
    Chain(String),
    /// The chain does not name the session.
    #[error("no session {0} on the chain")]
    UnknownSession(String),
    /// The session was deleted by retention.
    #[error("session {0} was deleted by retention (tombstoned)")]
    Deleted(String),
    /// A file does not match the hash the manifest or the chain gives it.
    #[error("integrity: {0}")]
    Integrity(String),
    /// Encryption or decryption failed.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
}

impl ArchiveError {
    /// Maps an I/O error to [`ArchiveError::Io`] doing `what`.
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}
