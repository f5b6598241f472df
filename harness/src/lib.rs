//! rsfm-harness: recipes → plan → content-addressed cache → scheduler → store, and the CLI.
//! Builds and tests without libtorch.

pub mod audit;
pub mod cache;
pub mod canonical;
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
pub mod scheduler;
pub mod store;
pub mod time;
