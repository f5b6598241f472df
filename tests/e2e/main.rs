//! End-to-end tests: the built `rsfm` binary on recipes in temp folders.

mod audit;
mod bad_corpus;
mod bad_recipes;
mod code_identity;
mod common;
mod data_parallel;
mod eval_synth;
mod example_recipe;
mod exit_codes;
mod failures;
mod faults;
mod first_hour;
mod foreign_files;
mod gpus_and_locks;
mod incremental;
mod interrupts;
mod potsdam_labels;
mod prepare;
mod report;
mod sensitivity;
mod shared_keys;
mod slurm;
mod smoke;
mod sql_bounds;
mod sync_bn;
mod tampering;
