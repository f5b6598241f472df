//! rsfm-harness: recipes → plan → content-addressed cache → scheduler → store, and the CLI.
//! Builds and tests without libtorch.

#![warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

pub mod audit;
pub mod cache;
pub mod canonical;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line: its output is what it prints"
)]
pub mod cli;
pub mod dataset_roots;
pub mod disk;
pub mod error;
pub mod executor;
pub mod fingerprint;
pub mod lock;
pub mod plan;
pub mod presets;
pub mod process;
pub mod query;
pub mod recipe;
pub mod report;
pub mod results_dir;
pub mod scheduler;
pub mod store;
pub mod time;
