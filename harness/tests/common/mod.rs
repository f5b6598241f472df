//! Rows the store tests write.

use rsfm_harness::store::{MetricRow, StageOutcome, StageRecord, StageStatus, Store};
use serde_json::json;

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
        commit_s: None,
    }
}

/// A `command` stage `name` under `key` in experiment `e`: no coordinates, matrix or
/// parameters, seed 0, on host `h`'s cpu; tests change the fields they need.
pub fn record(key: &str, name: &str, invocation_id: i64) -> StageRecord {
    StageRecord {
        key: key.into(),
        name: name.into(),
        kind: "command".into(),
        experiment: "e".into(),
        model: None,
        task: None,
        dataset: None,
        fraction: None,
        matrix: json!({}),
        params: json!({}),
        seed: Some(0),
        split: None,
        protocol: None,
        host: "h".into(),
        device: "cpu".into(),
        invocation_id,
        work_dir: String::new(),
        log_path: String::new(),
    }
}

/// A final metric (no step).
pub fn final_metric(name: &str, value: f64) -> MetricRow {
    MetricRow {
        name: name.into(),
        value,
        step: None,
    }
}

/// Starts the stage of `record` in `store` and ends it with `status` and `metrics`.
pub async fn record_run(
    store: &Store,
    record: &StageRecord,
    status: StageStatus,
    metrics: Vec<MetricRow>,
) {
    store.stage_started(record).await.unwrap();
    store
        .stage_finished(&record.key, &outcome(status, metrics))
        .await
        .unwrap();
}
