//! End-to-end tests: the built `rsfm` binary on recipes in temp folders.

mod common;
mod example_recipe;
mod incremental;
mod interrupts;
mod bad_recipes;
mod gpus_and_locks;
