//! `recorder`: the compliance recorder's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recorder::archive_cli::ArchiveCommand;
use recorder::live_cli::LiveCommand;

/// The compliance recorder.
#[derive(Debug, Parser)]
#[command(name = "recorder", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Archive(ArchiveCommand),
    #[command(flatten)]
    Live(LiveCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Archive(command) => command.run(),
        Command::Live(command) => command.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("recorder: {err}");
            ExitCode::FAILURE
        }
    }
}
