//! Enrolment and the archive commands. (Being built.)

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::sink::SessionArchive;

/// Enrolment and archive commands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Makes the recorder's device identity and prints its public bundle.
    Enroll,
}

impl ArchiveCommand {
    /// Runs the command.
    pub fn run(self) -> Result<(), Box<dyn std::error::Error>> {
        Err("recorder enroll: not built yet".into())
    }
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

/// Opens the archive the live commands write sessions into.
pub fn open_archive(
    _args: &ArchiveArgs,
) -> Result<Arc<dyn SessionArchive>, Box<dyn std::error::Error>> {
    Err("archive: not built yet".into())
}
