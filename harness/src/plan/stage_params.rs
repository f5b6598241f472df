//! A planned worker stage's parameters read through its kind's schema in `rsfm_model::params`,
//! so the names, types and defaults the plan reads are the ones the worker uses.

use rsfm_model::params::Schema;

use super::PlannedStage;

/// The worker parameters of `planned` as the schema `T`: `None` when the stage has no worker
/// parameters or they are not a `T`.
pub fn parsed<T: Schema>(planned: &PlannedStage) -> Option<T> {
    T::from_map(planned.worker_params.as_ref()?.params.clone()).ok()
}
