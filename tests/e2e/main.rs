//! End-to-end tests: the built `rsfm` binary on recipes in temp folders.

mod bad_recipes;
mod common;
mod eval_synth;
mod example_recipe;
mod exit_codes;
mod failures;
mod gpus_and_locks;
mod incremental;
mod interrupts;
mod smoke;
