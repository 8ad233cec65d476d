//! Dispatch from parsed arguments to commands, and the exit code.

use clap::Parser;

use crate::cli::Cli;

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let _cli = Cli::parse();
    0
}
