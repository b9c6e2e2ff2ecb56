//! `recorder export`: decrypts a session with the organization's key into playable `.webm`
//! files, its chat (`chat-pNNN.jsonl`) and its `manifest.json`, after checking the manifest
//! against the chain and every file against the manifest (ciphertext and plaintext hashes).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::ArchiveError;
use super::chain;
use super::index;
use super::manifest::{MANIFEST_BLOB, Manifest};
use super::seal::{OrgIdentity, sha256_hex};
use super::session::session_folder;
use super::store::Store;

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    /// The decrypted manifest.
    pub manifest: Manifest,
    /// The files written (the `.webm` files, the chat parts, then `manifest.json`).
    pub files: Vec<PathBuf>,
    /// Whether the chain's signatures were checked (a recorder key was given).
    pub signatures_checked: bool,
}

/// Exports `session` into `out_dir` (created 0700; files 0600: they are plaintext). With
/// `recorder_key`, the chain's signatures are checked too; its links always are.
pub fn export(
    store: &dyn Store,
    identity: &OrgIdentity,
    recorder_key: Option<&VerifyingKey>,
    session: &str,
    out_dir: &Path,
) -> Result<Exported, ArchiveError> {
    // Without the recorder key, read with a throwaway key: only the link problems count.
    let (key, signatures_checked) = match recorder_key {
        Some(key) => (*key, true),
        None => (
            ed25519_dalek::SigningKey::from_bytes(&[0; 32]).verifying_key(),
            false,
        ),
    };
    let read = chain::read(store, &key)?;
    let problem = if signatures_checked {
        read.all_problems().next()
    } else {
        read.problems.first()
    };
    if let Some(problem) = problem {
        return Err(ArchiveError::Chain(format!(
            "the chain does not verify: {problem}"
        )));
    }
    let sessions = index::sessions(&read.entries).0;
    let record = sessions
        .get(session)
        .ok_or_else(|| ArchiveError::UnknownSession(session.to_owned()))?;
    if record.deleted.is_some() {
        return Err(ArchiveError::Deleted(session.to_owned()));
    }
    let finished = record
        .finished
        .as_ref()
        .ok_or_else(|| ArchiveError::Integrity(format!("session {session} was never finished")))?;

    let folder = session_folder(session);
    let sealed_manifest = store
        .get(&format!("{folder}/{MANIFEST_BLOB}"))
        .map_err(ArchiveError::io("reading the manifest"))?;
    if sha256_hex(&sealed_manifest) != finished.manifest.sha256 {
        return Err(ArchiveError::Integrity(format!(
            "session {session}: the manifest does not match its chained hash"
        )));
    }
    let manifest_json = identity.open(&sealed_manifest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_json)
        .map_err(|e| ArchiveError::Integrity(format!("the manifest is unreadable: {e}")))?;
    if manifest.session != session {
        return Err(ArchiveError::Integrity(format!(
            "the manifest is session {}'s, not {session}'s",
            manifest.session
        )));
    }

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out_dir)
        .map_err(ArchiveError::io("making the output folder"))?;
    let mut files = Vec::new();
    let manifest_files = || {
        manifest
            .tracks
            .iter()
            .flat_map(|t| &t.files)
            .chain(&manifest.chat.files)
    };
    for file in manifest_files() {
        let chained = finished.files.iter().find(|c| c.name == file.name);
        if chained.is_none_or(|c| c.sha256 != file.ciphertext_sha256) {
            return Err(ArchiveError::Integrity(format!(
                "session {session}: {} is in the manifest but not on the chain with that hash",
                file.name
            )));
        }
        let sealed = store
            .get(&format!("{folder}/{}", file.name))
            .map_err(ArchiveError::io("reading a session file"))?;
        if sha256_hex(&sealed) != file.ciphertext_sha256 {
            return Err(ArchiveError::Integrity(format!(
                "session {session}: {} does not match its ciphertext hash",
                file.name
            )));
        }
        let plaintext = identity.open(&sealed)?;
        if sha256_hex(&plaintext) != file.plaintext_sha256 {
            return Err(ArchiveError::Integrity(format!(
                "session {session}: {} does not match its plaintext hash",
                file.name
            )));
        }
        let out = out_dir.join(file.name.trim_end_matches(".age"));
        write_private(&out, &plaintext)?;
        files.push(out);
    }
    if manifest_files().count() != finished.files.len() {
        return Err(ArchiveError::Integrity(format!(
            "session {session}: the chain names files the manifest does not"
        )));
    }
    let out = out_dir.join("manifest.json");
    write_private(&out, &manifest_json)?;
    files.push(out);
    Ok(Exported {
        manifest,
        files,
        signatures_checked,
    })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), ArchiveError> {
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(ArchiveError::io("writing an exported file"))?;
    out.write_all(data)
        .and_then(|()| out.sync_all())
        .map_err(ArchiveError::io("writing an exported file"))
}
