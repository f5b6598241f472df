//! The rows the store reads and writes.

use serde::{Deserialize, Serialize};

/// Where a stage stands, as stored in `stages.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// Planned, not started.
    Pending,
    /// Started by an invocation that has not recorded its end.
    Running,
    /// Ran and succeeded; its outputs are in the cache. A later run that finds the entry in
    /// the cache keeps this status (and records the use in `last_used_at`).
    Succeeded,
    /// Found in the cache with no record of the run that produced it.
    Cached,
    /// Ran and failed.
    Failed,
    /// Stopped by Ctrl-C, a signal, or a crash of the invocation that ran it.
    Interrupted,
    /// Not run because a stage it needs failed.
    Skipped,
}

impl StageStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [StageStatus; 7] = [
        StageStatus::Pending,
        StageStatus::Running,
        StageStatus::Succeeded,
        StageStatus::Cached,
        StageStatus::Failed,
        StageStatus::Interrupted,
        StageStatus::Skipped,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pending => "pending",
            StageStatus::Running => "running",
            StageStatus::Succeeded => "succeeded",
            StageStatus::Cached => "cached",
            StageStatus::Failed => "failed",
            StageStatus::Interrupted => "interrupted",
            StageStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StageStatus {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<StageStatus> {
        StageStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let allowed: Vec<&str> = StageStatus::ALL.iter().map(|st| st.as_str()).collect();
                anyhow::anyhow!(
                    "unknown stage status `{s}` (expected one of: {})",
                    allowed.join(", ")
                )
            })
    }
}

/// What the harness knows about a stage when it starts it (or finds it cached).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    /// Content key (sha256 hex).
    pub key: String,
    /// Stage name, with its matrix suffix (`train@vit-b`).
    pub name: String,
    /// Stage kind (`finetune-det`, `command`, ...).
    pub kind: String,
    /// Experiment name of the recipe.
    pub experiment: String,
    /// Model coordinate, where the stage has one.
    pub model: Option<String>,
    /// Task coordinate, where the stage has one.
    pub task: Option<String>,
    /// Dataset coordinate, where the stage has one.
    pub dataset: Option<String>,
    /// Training data fraction, where the stage has one.
    pub fraction: Option<f64>,
    /// Matrix variables of this stage (JSON object).
    pub matrix: serde_json::Value,
    /// Resolved parameters (JSON object).
    pub params: serde_json::Value,
    /// Its seed.
    pub seed: Option<i64>,
    /// For an evaluation, the split it scores (`val`, `test`).
    pub split: Option<String>,
    /// For an evaluation, the settings that change its numbers (`ap=voc07 iou=0.5 …`).
    pub protocol: Option<String>,
    /// Host that runs it.
    pub host: String,
    /// Device it runs on (`cpu`, `cuda:0`, `none`).
    pub device: String,
    /// The invocation that runs it.
    pub invocation_id: i64,
    /// Its work dir (resume checkpoints).
    pub work_dir: String,
    /// Its log file.
    pub log_path: String,
}

/// A metric value reported by a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// Metric name (`map`, `miou`, `loss`, ...).
    pub name: String,
    /// Its value (NaN is stored as NULL).
    pub value: f64,
    /// Training step for a progress value; `None` for a final metric.
    pub step: Option<i64>,
}

/// A file a stage produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    /// Path relative to the stage's cache entry.
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// sha256 of its content (hex).
    pub sha256: String,
}

/// How a stage attempt ended.
#[derive(Debug, Clone)]
pub struct StageOutcome {
    /// Final status of the attempt.
    pub status: StageStatus,
    /// Why it failed, where it did.
    pub error: Option<String>,
    /// Last lines of its stderr.
    pub stderr_tail: Option<String>,
    /// Its metrics; they replace the stage's previous metrics.
    pub metrics: Vec<MetricRow>,
    /// Its artifacts; they replace the stage's previous artifacts.
    pub artifacts: Vec<ArtifactRow>,
    /// Its cache entry, where it has one.
    pub cache_dir: Option<String>,
    /// Wall time of the attempt in seconds.
    pub duration_s: f64,
    /// Seconds spent committing its output to the cache (hashing, manifest, fsync), after
    /// `duration_s`; None when nothing was committed.
    pub commit_s: Option<f64>,
}

/// A row of `stages`, as `rsfm status` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRow {
    /// Content key.
    pub key: String,
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Experiment name.
    pub experiment: String,
    /// Model coordinate.
    pub model: Option<String>,
    /// Task coordinate.
    pub task: Option<String>,
    /// Dataset coordinate.
    pub dataset: Option<String>,
    /// Data fraction.
    pub fraction: Option<f64>,
    /// Current status.
    pub status: StageStatus,
    /// Number of attempts so far.
    pub attempts: i64,
    /// Start of the latest attempt.
    pub started_at: Option<String>,
    /// End of the latest attempt.
    pub finished_at: Option<String>,
    /// Wall time of the latest attempt.
    pub duration_s: Option<f64>,
    /// Host of the latest attempt.
    pub host: Option<String>,
    /// Device of the latest attempt.
    pub device: Option<String>,
    /// Invocation of the latest attempt.
    pub invocation_id: Option<i64>,
    /// Error of the latest attempt.
    pub error: Option<String>,
    /// Last lines of stderr of the latest attempt.
    pub stderr_tail: Option<String>,
    /// Log file.
    pub log_path: Option<String>,
    /// Work dir.
    pub work_dir: Option<String>,
    /// Cache entry.
    pub cache_dir: Option<String>,
    /// Its seed.
    pub seed: Option<i64>,
    /// When a run last ran it or found it in the cache.
    pub last_used_at: Option<String>,
    /// When `rsfm cache gc` removed its cache entry.
    pub removed_at: Option<String>,
}

/// Which stages [`crate::store::Store::stages`] returns; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct StageFilter {
    /// Only these statuses.
    pub statuses: Vec<StageStatus>,
    /// Only this experiment.
    pub experiment: Option<String>,
    /// Only keys starting with this prefix.
    pub key_prefix: Option<String>,
    /// Only the current row of each stage (see [`crate::store::StageScope`]).
    pub current: bool,
    /// Only these keys (the keys recipes resolve to now), when set.
    pub keys: Option<Vec<String>>,
    /// Leave out stages dismissed by `rsfm status --clear`.
    pub undismissed: bool,
}

/// A row of the stat cache: the sha256 of `path` when it had this size, mtime and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashRow {
    /// Absolute path.
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Inode number.
    pub inode: i64,
    /// sha256 of its content (hex).
    pub sha256: String,
}

/// A number the paper reports for one cell of one of its tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportedRow {
    /// Table name (`table3`).
    pub table_name: String,
    /// Row label.
    pub row: String,
    /// Column label.
    pub col: String,
    /// Reported value.
    pub value: Option<f64>,
    /// Where it comes from (`paper Table 3`).
    pub source: Option<String>,
}
