//! Rows the store tests write.

use rsfm_harness::store::{MetricRow, StageOutcome, StageStatus};

/// An attempt that ended with `status` and reported `metrics`: no error, stderr, artifacts or
/// cache entry, one second long.
pub fn outcome(status: StageStatus, metrics: Vec<MetricRow>) -> StageOutcome {
    StageOutcome {
        status,
        error: None,
        stderr_tail: None,
        metrics,
        artifacts: vec![],
        cache_dir: None,
        duration_s: 1.0,
    }
}
