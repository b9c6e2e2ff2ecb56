//! Enrolment and the archive commands: `enroll`, `org-keygen`, `list`, `hold`, `release`,
//! `sweep`, `verify`, `export`; and [`open_archive`], which the live commands write into.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use e2ee_frames::identity::DeviceId;
use ed25519_dalek::VerifyingKey;

use crate::archive::chain::{self, ChainSigner};
use crate::archive::seal::{OrgIdentity, OrgRecipient};
use crate::archive::session::{LocalArchive, session_folder};
use crate::archive::store::{LocalStore, Store as _};
use crate::archive::track_part::PartLimits;
use crate::archive::{export, index, retention, verify};
use crate::identity;
use crate::sink::SessionArchive;

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Enrolment and archive commands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Makes the recorder's device identity (0600 in the state directory) and prints its
    /// public bundle and the recording policy's recorder entry.
    Enroll {
        /// The recorder's state directory (created 0700).
        #[arg(long, env = "RECORDER_STATE_DIR")]
        state_dir: PathBuf,
        /// The device id (1–64 of `[A-Za-z0-9_-]`; default `recorder-<random>`).
        #[arg(long)]
        device: Option<String>,
    },
    /// Makes the organization's archive key (an age X25519 identity, written 0600) and prints
    /// its public key (`age1…`) for the recorder. Run it on the custody machine, never on the
    /// recorder's host.
    OrgKeygen {
        /// Where to write the private key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Lists the sessions: start, expiry, held, deleted.
    List {
        /// The archive directory.
        #[arg(long, env = "RECORDER_ARCHIVE_DIR")]
        archive_dir: PathBuf,
    },
    /// Puts a session under a hold: retention keeps it until it is released.
    Hold {
        /// The session id.
        session: String,
        /// Why (a case reference: the chain is plaintext, so no names).
        #[arg(long)]
        reason: String,
        /// The recorder's state and archive.
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Lifts a session's hold.
    Release {
        /// The session id.
        session: String,
        /// The recorder's state and archive.
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Deletes the sessions past their expiry that are not held, each with a signed tombstone.
    Sweep {
        /// The recorder's state and archive.
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Checks the archive with the recorder's public key: chain signatures and links, every
    /// file's hash, nothing missing, nothing unchained. Exits non-zero naming each problem.
    Verify {
        /// The archive directory.
        #[arg(long, env = "RECORDER_ARCHIVE_DIR")]
        archive_dir: PathBuf,
        /// The recorder key the chain is checked with.
        #[command(flatten)]
        key: RecorderKeyArgs,
    },
    /// Decrypts a session with the organization's key into playable `.webm` files and its
    /// `manifest.json`, checking every hash against the manifest and the manifest against the
    /// chain.
    Export {
        /// The organization's archive key file (`recorder org-keygen`).
        #[arg(long)]
        identity: PathBuf,
        /// The archive directory.
        #[arg(long, env = "RECORDER_ARCHIVE_DIR")]
        archive_dir: PathBuf,
        /// The recorder key the chain is checked with.
        #[command(flatten)]
        key: RecorderKeyArgs,
        /// The session id.
        session: String,
        /// Where to write the files (created 0700; they are plaintext).
        out_dir: PathBuf,
    },
}

/// The recorder's state (its signing key) and its archive, for commands that append to the
/// chain.
#[derive(Clone, Debug, Args)]
pub struct SignerArgs {
    /// The recorder's state directory (its identity).
    #[arg(long, env = "RECORDER_STATE_DIR")]
    pub state_dir: PathBuf,
    /// The archive directory.
    #[arg(long, env = "RECORDER_ARCHIVE_DIR")]
    pub archive_dir: PathBuf,
}

/// The recorder's public key that verifies the chain.
#[derive(Clone, Debug, Args)]
pub struct RecorderKeyArgs {
    /// The recorder's identity key (base64url, the policy entry's `identity_key`). One such
    /// key in 64 starts with `-`: it is a value, not a flag.
    #[arg(long, env = "RECORDER_KEY", allow_hyphen_values = true)]
    pub recorder_key: Option<String>,
    /// Or the recorder's state directory, to read it from (`--recorder-key` wins).
    #[arg(long, env = "RECORDER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl RecorderKeyArgs {
    fn load(&self) -> Result<Option<VerifyingKey>, Box<dyn std::error::Error>> {
        if let Some(b64) = &self.recorder_key {
            return Ok(Some(chain::parse_recorder_key(b64)?));
        }
        match &self.state_dir {
            Some(dir) => {
                let keys = identity::load(dir)?;
                Ok(Some(VerifyingKey::from_bytes(&keys.identity_key())?))
            }
            None => Ok(None),
        }
    }
}

fn load_signer(state_dir: &Path) -> Result<(ChainSigner, String), Box<dyn std::error::Error>> {
    let keys = identity::load(state_dir)?;
    Ok((
        ChainSigner::from_identity_secret(&keys.identity_secret()),
        keys.device().as_str().to_owned(),
    ))
}

impl ArchiveCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        match self {
            Self::Enroll { state_dir, device } => enroll(&state_dir, device),
            Self::OrgKeygen { out } => org_keygen(&out),
            Self::List { archive_dir } => list(&archive_dir),
            Self::Hold {
                session,
                reason,
                signer,
            } => {
                let store = LocalStore::open(&signer.archive_dir)?;
                let (signer, _) = load_signer(&signer.state_dir)?;
                retention::hold(&store, &signer, &session, &reason, SystemTime::now())?;
                println!("session {session}: held");
                Ok(())
            }
            Self::Release { session, signer } => {
                let store = LocalStore::open(&signer.archive_dir)?;
                let (signer, _) = load_signer(&signer.state_dir)?;
                retention::release(&store, &signer, &session, SystemTime::now())?;
                println!("session {session}: released");
                Ok(())
            }
            Self::Sweep { signer } => {
                let store = LocalStore::open(&signer.archive_dir)?;
                let (signer, _) = load_signer(&signer.state_dir)?;
                let swept = retention::sweep(&store, &signer, SystemTime::now())?;
                for s in &swept {
                    println!(
                        "session {}: deleted ({} files; expired at {})",
                        s.session, s.files_deleted, s.expires_at
                    );
                }
                println!("{} sessions deleted", swept.len());
                Ok(())
            }
            Self::Verify { archive_dir, key } => {
                let key = key.load()?.ok_or(
                    "verify needs the recorder's key: --recorder-key B64 or --state-dir DIR",
                )?;
                let store = open_existing(&archive_dir)?;
                let report = verify::verify(&store, &key)?;
                for note in &report.notes {
                    println!("note: {note}");
                }
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                println!("chain head: {}", report.head);
                println!(
                    "{} chain entries, {} sessions, {} files checked, {} problems",
                    report.entries,
                    report.sessions,
                    report.files_checked,
                    report.problems.len()
                );
                if report.ok() {
                    Ok(())
                } else {
                    Err(format!(
                        "the archive does not verify ({} problems)",
                        report.problems.len()
                    )
                    .into())
                }
            }
            Self::Export {
                identity,
                archive_dir,
                key,
                session,
                out_dir,
            } => {
                let text = fs::read_to_string(&identity)
                    .map_err(|e| format!("{}: {e}", identity.display()))?;
                let org = OrgIdentity::parse_file(&text)?;
                let key = key.load()?;
                let store = open_existing(&archive_dir)?;
                let exported = export::export(&store, &org, key.as_ref(), &session, &out_dir)?;
                if !exported.signatures_checked {
                    eprintln!(
                        "recorder: warning: chain signatures not checked (give --recorder-key or --state-dir); links and hashes were"
                    );
                }
                for file in &exported.files {
                    println!("{}", file.display());
                }
                Ok(())
            }
        }
    }
}

fn open_existing(archive_dir: &Path) -> Result<LocalStore, Box<dyn std::error::Error>> {
    if !archive_dir.is_dir() {
        return Err(format!("{}: no such archive directory", archive_dir.display()).into());
    }
    Ok(LocalStore::open(archive_dir)?)
}

fn enroll(state_dir: &Path, device: Option<String>) -> CliResult {
    let device = match device {
        Some(id) => DeviceId::new(id)?,
        None => DeviceId::new(format!("recorder-{:016x}", rand::random::<u64>()))
            .expect("recorder- and 16 hex digits is a valid device id"),
    };
    let keys = identity::enroll(state_dir, device)?;
    println!("{}", keys.bundle().to_json());
    println!(
        "{}",
        serde_json::json!({
            "device": keys.device().as_str(),
            "identity_key": URL_SAFE_NO_PAD.encode(keys.identity_key()),
        })
    );
    eprintln!(
        "recorder: enrolled {} in {}: the first line is its public bundle, the second its entry for the recording policy",
        keys.device(),
        state_dir.join(identity::IDENTITY_FILE).display()
    );
    Ok(())
}

fn org_keygen(out: &Path) -> CliResult {
    let key = OrgIdentity::generate();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(key.to_file_text().as_bytes())?;
    file.sync_all()?;
    println!("{}", key.recipient());
    eprintln!(
        "recorder: the archive key is in {} (0600): keep it on this custody machine; give the recorder the public key above (--archive-recipient)",
        out.display()
    );
    Ok(())
}

fn list(archive_dir: &Path) -> CliResult {
    let store = open_existing(archive_dir)?;
    // Listing needs no key: it shows what the chain says, signatures unchecked (`verify`
    // checks them).
    let read = chain::read(
        &store,
        &ed25519_dalek::SigningKey::from_bytes(&[0; 32]).verifying_key(),
    )?;
    let sessions = index::sessions(&read.entries).0;
    println!(
        "{:<28} {:<25} {:<25} {:<6} state",
        "session", "started", "expires", "held"
    );
    for record in sessions.values() {
        let state = match (&record.deleted, &record.finished) {
            (Some(_), _) => "deleted",
            (None, Some(_)) => "finished",
            (None, None) => "open",
        };
        let present = !store.list(&session_folder(&record.id))?.is_empty();
        println!(
            "{:<28} {:<25} {:<25} {:<6} {state}{}",
            record.id,
            record.started_at,
            record.expires_at,
            if record.held.is_some() { "yes" } else { "no" },
            if record.deleted.is_some() && present {
                " (files remain: sweep)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Where the archive is and whom it is encrypted to (shared by the archive and live commands).
#[derive(Clone, Debug, Args)]
pub struct ArchiveArgs {
    /// The recorder's state directory (its identity, `recorder enroll`).
    #[arg(long, env = "RECORDER_STATE_DIR")]
    pub state_dir: PathBuf,
    /// The archive directory (the local store).
    #[arg(long, env = "RECORDER_ARCHIVE_DIR")]
    pub archive_dir: PathBuf,
    /// The organization's archive public key (an age X25519 recipient, `age1…`): every file is
    /// encrypted to it.
    #[arg(long, env = "RECORDER_ARCHIVE_RECIPIENT")]
    pub archive_recipient: String,
}

/// Opens the local archive (the live `serve` also calls its
/// [`sweep`](LocalArchive::sweep) periodically).
pub fn open_local_archive(
    args: &ArchiveArgs,
) -> Result<Arc<LocalArchive>, Box<dyn std::error::Error>> {
    let recipient = OrgRecipient::parse(&args.archive_recipient)?;
    let (signer, device) = load_signer(&args.state_dir)?;
    let store = LocalStore::open(&args.archive_dir)?;
    Ok(Arc::new(LocalArchive::new(
        Arc::new(store),
        recipient,
        signer,
        device,
        PartLimits::default(),
    )))
}

/// Opens the archive the live commands write sessions into.
pub fn open_archive(
    args: &ArchiveArgs,
) -> Result<Arc<dyn SessionArchive>, Box<dyn std::error::Error>> {
    let archive: Arc<dyn SessionArchive> = open_local_archive(args)?;
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ArchiveCommand;

    /// `recorder`'s archive subcommands, as `main.rs` flattens them.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ArchiveCommand,
    }

    #[test]
    fn a_recorder_key_that_starts_with_a_dash_is_a_value() {
        // 0xF8 0xF8 0xF8 … is `-Pj4…` in base64url.
        let key = e2ee_frames::wire::b64_encode(&[0xF8; 32]);
        assert!(key.starts_with('-'), "{key}");
        let cli = Cli::try_parse_from([
            "recorder",
            "verify",
            "--archive-dir",
            "/nonexistent/archive",
            "--recorder-key",
            &key,
        ])
        .unwrap_or_else(|e| panic!("parses: {e}"));
        let ArchiveCommand::Verify { key: args, .. } = cli.command else {
            panic!("verify")
        };
        assert_eq!(args.recorder_key.as_deref(), Some(key.as_str()));
    }
}
