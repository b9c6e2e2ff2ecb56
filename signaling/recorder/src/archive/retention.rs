//! Retention: sessions past their expiry are deleted unless held, each deletion recorded by a
//! signed `tombstone` on the chain; holds and releases are chain entries too. Every decision
//! ("expired and not held", "not already held") is taken under the chain's lock, from the chain
//! as it is then, so a hold placed by another process is never swept over.
//!
//! The tombstone is appended before the files are deleted, so a sweep cut short leaves a
//! tombstoned session whose files the next sweep deletes (never a deleted session without its
//! tombstone).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::chain::{self, Body, ChainRead, ChainSigner};
use super::index::{self, SessionRecord};
use super::session::session_folder;
use super::store::Store;
use super::{ArchiveError, timefmt};

/// How long after its expiry an unfinished session (the recorder stopped before finishing it,
/// or it is still being recorded) waits before the sweep deletes it: a call still running at
/// its expiry is not cut.
pub const UNFINISHED_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A session the sweep deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    /// The session id.
    pub session: String,
    /// Its expiry.
    pub expires_at: String,
    /// Blobs deleted.
    pub files_deleted: usize,
}

fn sessions_of(read: &ChainRead) -> BTreeMap<String, SessionRecord> {
    index::sessions(&read.entries).0
}

fn verified_sessions(
    store: &dyn Store,
    signer: &ChainSigner,
) -> Result<BTreeMap<String, SessionRecord>, ArchiveError> {
    let read = chain::read(store, &signer.verifying_key())?;
    if let Some(problem) = read.all_problems().next() {
        return Err(ArchiveError::Chain(format!(
            "the chain does not verify ({problem}); run `recorder verify`"
        )));
    }
    Ok(sessions_of(&read))
}

fn delete_session_files(store: &dyn Store, session: &str) -> Result<usize, ArchiveError> {
    let names = store
        .list(&session_folder(session))
        .map_err(ArchiveError::io("listing a session"))?;
    for name in &names {
        match store.delete(name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ArchiveError::io("deleting a session file")(e)),
        }
    }
    Ok(names.len())
}

/// When `record` is due for deletion (`None`: held or already deleted).
fn due(record: &SessionRecord) -> Result<Option<SystemTime>, ArchiveError> {
    if record.held.is_some() || record.deleted.is_some() {
        return Ok(None);
    }
    let expires_at = timefmt::parse(&record.expires_at).map_err(ArchiveError::Chain)?;
    Ok(Some(if record.finished.is_some() {
        expires_at
    } else {
        expires_at + UNFINISHED_GRACE
    }))
}

/// Deletes every session whose expiry is at or before `now` (plus [`UNFINISHED_GRACE`] for an
/// unfinished one) and that is not held, appending a signed tombstone for each first; finishes
/// deletions a previous sweep left undone. Returns what it deleted. Refuses to act on a chain
/// that does not verify with `signer`'s key.
pub fn sweep(
    store: &dyn Store,
    signer: &ChainSigner,
    now: SystemTime,
) -> Result<Vec<Swept>, ArchiveError> {
    let mut swept = Vec::new();
    for record in verified_sessions(store, signer)?.values() {
        if record.deleted.is_some() {
            // Tombstoned by a sweep that did not get to delete everything.
            let files_deleted = delete_session_files(store, &record.id)?;
            if files_deleted > 0 {
                swept.push(Swept {
                    session: record.id.clone(),
                    expires_at: record.expires_at.clone(),
                    files_deleted,
                });
            }
            continue;
        }
        if due(record)?.is_none_or(|due| due > now) {
            continue;
        }
        // Decided again under the chain's lock: a hold may have landed since the read above.
        let tombstone = signer.append_with(store, now, |read| {
            let Some(current) = sessions_of(read).remove(&record.id) else {
                return Ok(None);
            };
            Ok(due(&current)?
                .is_some_and(|due| due <= now)
                .then(|| Body::Tombstone {
                    session: record.id.clone(),
                    reason: format!("retention: expired at {}", record.expires_at),
                }))
        })?;
        if tombstone.is_none() {
            continue;
        }
        let files_deleted = delete_session_files(store, &record.id)?;
        swept.push(Swept {
            session: record.id.clone(),
            expires_at: record.expires_at.clone(),
            files_deleted,
        });
    }
    Ok(swept)
}

/// Puts `session` under a hold (retention keeps it until released).
pub fn hold(
    store: &dyn Store,
    signer: &ChainSigner,
    session: &str,
    reason: &str,
    now: SystemTime,
) -> Result<(), ArchiveError> {
    signer
        .append_with(store, now, |read| match sessions_of(read).get(session) {
            None => Err(ArchiveError::UnknownSession(session.to_owned())),
            Some(r) if r.deleted.is_some() => Err(ArchiveError::Deleted(session.to_owned())),
            Some(r) if r.held.is_some() => Err(ArchiveError::Chain(format!(
                "session {session} is already held"
            ))),
            Some(_) => Ok(Some(Body::Hold {
                session: session.to_owned(),
                reason: reason.to_owned(),
            })),
        })
        .map(drop)
}

/// Lifts the hold on `session`.
pub fn release(
    store: &dyn Store,
    signer: &ChainSigner,
    session: &str,
    now: SystemTime,
) -> Result<(), ArchiveError> {
    signer
        .append_with(store, now, |read| match sessions_of(read).get(session) {
            None => Err(ArchiveError::UnknownSession(session.to_owned())),
            Some(r) if r.held.is_none() => Err(ArchiveError::Chain(format!(
                "session {session} is not held"
            ))),
            Some(_) => Ok(Some(Body::Release {
                session: session.to_owned(),
            })),
        })
        .map(drop)
}
