//! `recorder verify`: checks the archive with the recorder's public key only (no organization
//! key): every chain signature and link, every present file against its chained ciphertext
//! hash, every chained session present unless tombstoned, and nothing in the store that the
//! chain does not name.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::VerifyingKey;

use super::ArchiveError;
use super::chain;
use super::index;
use super::seal::sha256_hex;
use super::store::Store;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Each problem (the archive does not verify while there is one).
    pub problems: Vec<String>,
    /// Things worth knowing that are not faults (a session still open, a sweep to finish).
    pub notes: Vec<String>,
    /// Chain entries read.
    pub entries: usize,
    /// Sessions on the chain.
    pub sessions: usize,
    /// Files whose hash was checked.
    pub files_checked: usize,
    /// The hash of the chain's last line: recorded elsewhere (a ticket, a log), it lets a later
    /// `verify` notice entries removed from the chain's end, which no link can show.
    pub head: String,
}

impl VerifyReport {
    /// Whether the archive verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the archive in `store` against the recorder key `key`.
pub fn verify(store: &dyn Store, key: &VerifyingKey) -> Result<VerifyReport, ArchiveError> {
    let read = chain::read(store, key)?;
    let (sessions, chain_problems) = index::sessions(&read.entries);
    let mut report = VerifyReport {
        problems: read.all_problems().cloned().collect(),
        entries: read.entries.len(),
        sessions: sessions.len(),
        head: read.last_hash.clone(),
        ..VerifyReport::default()
    };
    report.problems.extend(chain_problems);

    // What the store holds, by session.
    let mut stored: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in store
        .list("sessions")
        .map_err(ArchiveError::io("listing the sessions"))?
    {
        let mut parts = name.splitn(3, '/');
        let (_, session, file) = (parts.next(), parts.next(), parts.next());
        match (session, file) {
            (Some(session), Some(file)) => {
                stored
                    .entry(session.to_owned())
                    .or_default()
                    .insert(file.to_owned());
            }
            _ => report
                .problems
                .push(format!("{name}: not in a session folder")),
        }
    }

    for (id, record) in &sessions {
        let present = stored.remove(id).unwrap_or_default();
        if let Some(reason) = &record.deleted {
            if !present.is_empty() {
                report.notes.push(format!(
                    "session {id}: tombstoned ({reason}) but {} files remain (the next sweep deletes them)",
                    present.len()
                ));
            }
            continue;
        }
        let Some(finished) = &record.finished else {
            report.notes.push(format!(
                "session {id}: open since {} and not finished (being recorded, or the recorder stopped before finishing it); {} files not yet chained",
                record.started_at,
                present.len()
            ));
            continue;
        };
        let mut chained = BTreeSet::new();
        for file in finished.all_files() {
            chained.insert(file.name.clone());
            if !present.contains(&file.name) {
                report.problems.push(format!(
                    "session {id}: {} is missing (deleted without a tombstone)",
                    file.name
                ));
                continue;
            }
            let blob = store
                .get(&format!("sessions/{id}/{}", file.name))
                .map_err(ArchiveError::io("reading a session file"))?;
            report.files_checked += 1;
            if sha256_hex(&blob) != file.sha256 || blob.len() as u64 != file.bytes {
                report.problems.push(format!(
                    "session {id}: {} does not match its chained hash (altered)",
                    file.name
                ));
            }
        }
        for extra in present.difference(&chained) {
            report.problems.push(format!(
                "session {id}: {extra} is not on the chain (added after the session finished)"
            ));
        }
    }
    for (id, files) in stored {
        report.problems.push(format!(
            "session {id}: {} files in the store but the session is not on the chain",
            files.len()
        ));
    }
    Ok(report)
}
