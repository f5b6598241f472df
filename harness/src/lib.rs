//! rsfm-harness: recipes → plan → content-addressed cache → scheduler → store, and the CLI.
//! Builds and tests without libtorch.

pub mod canonical;
pub mod cli;
pub mod lock;
pub mod process;
pub mod recipe;
pub mod time;
pub mod store;
pub mod query;
pub mod fingerprint;
pub mod cache;
pub mod executor;
pub mod plan;
pub mod presets;
pub mod scheduler;
