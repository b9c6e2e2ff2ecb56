//! The live commands. (Being built.)

use clap::Subcommand;

/// Live commands.
#[derive(Debug, Subcommand)]
pub enum LiveCommand {
    /// Records every room whose signed policy names this recorder, as they become active.
    Serve,
}

impl LiveCommand {
    /// Runs the command.
    pub fn run(self) -> Result<(), Box<dyn std::error::Error>> {
        Err("recorder serve: not built yet".into())
    }
}
