//! The files a detached job reads and writes in its stage's work dir: `detach-job.json` (what
//! to run and commit, written at submission) and `detach-end.json` (how it ended, written by
//! the job, read when the run is ingested).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::key::KeyManifest;

/// The job's spec file in the work dir.
pub const JOB_SPEC_FILE: &str = "detach-job.json";
/// The job's end file in the work dir.
pub const JOB_END_FILE: &str = "detach-end.json";
/// The job's count of starts (1, then one more per requeue) in the work dir.
pub const STARTS_FILE: &str = "detach-starts";

/// What a detached job runs and commits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// The results directory.
    pub results_dir: PathBuf,
    /// `experiment/stage@matrix`, for the log.
    pub label: String,
    /// The stage's key manifest.
    pub key: KeyManifest,
    /// The stage's name (the manifest's `stage`).
    pub stage_name: String,
    /// The entry's `stage.json`.
    pub stage_json: serde_json::Value,
    /// The entry's `recipe.resolved.toml`.
    pub resolved_recipe: String,
    /// Entry dirs of the stages it needs, by base name (checked for tampering).
    pub inputs: BTreeMap<String, PathBuf>,
    /// The build dir (`{out}`), emptied at each start.
    pub out: PathBuf,
    /// The stage log (the job's `--output`).
    pub log: PathBuf,
    /// The script that runs the stage's command as `rsfm run --backend slurm` does.
    pub stage_script: PathBuf,
    /// The device, for the log's attempt header.
    pub device: String,
}

/// How a detached job ended, as the job saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnd {
    /// Whether the stage's entry is in the cache now.
    pub committed: bool,
    /// Why not.
    pub error: Option<String>,
    /// Seconds the stage's process ran (all starts of the job).
    pub duration_s: f64,
    /// Seconds the commit took.
    pub commit_s: Option<f64>,
}

impl JobSpec {
    /// Reads the spec at `path`.
    pub fn read(path: &Path) -> anyhow::Result<JobSpec> {
        Ok(serde_json::from_slice(&fs_err::read(path)?)?)
    }
}

/// Writes `value` as JSON to `path` (through a temporary file, renamed).
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs_err::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// The end file of the work dir `work`, if the job wrote one.
pub fn read_end(work: &Path) -> Option<JobEnd> {
    serde_json::from_slice(&std::fs::read(work.join(JOB_END_FILE)).ok()?).ok()
}

/// How many times the job of work dir `work` started.
pub fn starts(work: &Path) -> u32 {
    std::fs::read_to_string(work.join(STARTS_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
