//! rsfm-harness: recipes → plan → content-addressed cache → scheduler → store, and the CLI.
//! Builds and tests without libtorch.

pub mod cli;
