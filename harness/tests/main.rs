//! The harness's integration tests, one binary (one link of the harness and sqlx): a module
//! per area, each described in its own first lines. The paper-plan tests are the `paper`
//! binary (they set `RSFM_WORKER` for the process).

mod common;

mod recipe_errors;
mod recipe_extends;
mod recipe_load;
mod store_current;
mod store_fingerprint;
mod store_lifecycle;
mod store_results;
mod store_sql;
