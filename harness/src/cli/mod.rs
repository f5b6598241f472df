//! The `rsfm` command line.

pub mod params;

use std::process::ExitCode;

/// Runs the `rsfm` CLI and returns its exit code.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
