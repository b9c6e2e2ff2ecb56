//! What the chain says about each session (started, finished with which files, held, deleted),
//! folded from its entries in order.

use std::collections::BTreeMap;

use super::chain::{Body, ChainFile, Entry};

/// One session as the chain records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id.
    pub id: String,
    /// When it started.
    pub started_at: String,
    /// When retention lets it go.
    pub expires_at: String,
    /// Its files, once it finished.
    pub finished: Option<Finished>,
    /// The reason of the hold in force, if held.
    pub held: Option<String>,
    /// The reason it was deleted, if deleted.
    pub deleted: Option<String>,
}

/// A finished session's files as chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// When it ended.
    pub ended_at: String,
    /// Its media files.
    pub files: Vec<ChainFile>,
    /// Its manifest.
    pub manifest: ChainFile,
}

impl Finished {
    /// Every file, the manifest included.
    pub fn all_files(&self) -> impl Iterator<Item = &ChainFile> {
        self.files.iter().chain(std::iter::once(&self.manifest))
    }
}

/// Folds the chain's entries into one record per session; entries that make no sense in
/// their place (a hold of an unknown session, a second finish, …) are named in the problems.
pub fn sessions(entries: &[(Entry, String)]) -> (BTreeMap<String, SessionRecord>, Vec<String>) {
    let mut sessions: BTreeMap<String, SessionRecord> = BTreeMap::new();
    let mut problems = Vec::new();
    for (entry, _) in entries {
        let id = entry.body.session().to_owned();
        let seq = entry.seq;
        match &entry.body {
            Body::Open {
                started_at,
                expires_at,
                ..
            } => {
                if sessions.contains_key(&id) {
                    problems.push(format!("chain entry {seq}: session {id} opened twice"));
                    continue;
                }
                sessions.insert(
                    id.clone(),
                    SessionRecord {
                        id,
                        started_at: started_at.clone(),
                        expires_at: expires_at.clone(),
                        finished: None,
                        held: None,
                        deleted: None,
                    },
                );
            }
            Body::Session {
                started_at,
                ended_at,
                expires_at,
                files,
                manifest,
                ..
            } => {
                let record = sessions.entry(id.clone()).or_insert_with(|| SessionRecord {
                    id: id.clone(),
                    started_at: started_at.clone(),
                    expires_at: expires_at.clone(),
                    finished: None,
                    held: None,
                    deleted: None,
                });
                if record.finished.is_some() || record.deleted.is_some() {
                    problems.push(format!(
                        "chain entry {seq}: session {id} finished after it was finished or deleted"
                    ));
                    continue;
                }
                record.expires_at = expires_at.clone();
                record.finished = Some(Finished {
                    ended_at: ended_at.clone(),
                    files: files.clone(),
                    manifest: manifest.clone(),
                });
            }
            Body::Tombstone { reason, .. } => match sessions.get_mut(&id) {
                Some(record) if record.deleted.is_none() => record.deleted = Some(reason.clone()),
                _ => problems.push(format!(
                    "chain entry {seq}: tombstone of session {id}, which is unknown or already deleted"
                )),
            },
            Body::Hold { reason, .. } => match sessions.get_mut(&id) {
                Some(record) if record.deleted.is_none() => record.held = Some(reason.clone()),
                _ => problems.push(format!(
                    "chain entry {seq}: hold of session {id}, which is unknown or deleted"
                )),
            },
            Body::Release { .. } => match sessions.get_mut(&id) {
                Some(record) if record.held.is_some() => record.held = None,
                _ => problems.push(format!(
                    "chain entry {seq}: release of session {id}, which is not held"
                )),
            },
        }
    }
    (sessions, problems)
}
