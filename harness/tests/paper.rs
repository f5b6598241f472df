//! The harness's tests on the paper study's plan, one binary: planning it sets `RSFM_WORKER`
//! for the whole process (any executable stands in for the worker), which no other test may
//! see change under it.

mod common;
mod paper_plan;

mod report_paper;
mod scheduler_order;
