//! The `tierflow` binary: command-line entry point.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod decode;

#[derive(Debug, Parser)]
#[command(
    name = "tierflow",
    version,
    about = "QoS-aware OpenFlow 1.3 controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode files of raw OpenFlow 1.3 messages; print one JSON object per message.
    Decode {
        /// Re-encode every message and exit 1 if any differs from its input bytes.
        #[arg(long)]
        roundtrip: bool,
        /// Files holding one or more messages back to back.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { roundtrip, files } => decode::run(&files, roundtrip),
    }
}
