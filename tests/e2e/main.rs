//! End-to-end tests: the built `rsfm` binary on recipes in temp folders.

mod bad_recipes;
mod code_identity;
mod common;
mod eval_synth;
mod example_recipe;
mod failures;
mod first_hour;
mod gpus_and_locks;
mod incremental;
mod interrupts;
mod prepare;
mod report;
mod smoke;
