//! `slurm-job.json` in a stage's work dir: the Slurm job that runs (or ran) it and the rsfm
//! invocation that submitted it, so `rsfm status` can show the job's id and state.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::states::JobId;

/// The file's name in the work dir.
pub const JOB_RECORD_FILE: &str = "slurm-job.json";

/// The latest Slurm job of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id.
    pub job_id: JobId,
    /// The store invocation (`rsfm run`) that submitted it.
    pub invocation_id: i64,
}

impl JobRecord {
    /// Writes the record into `work_dir`.
    pub fn write(&self, work_dir: &Path) -> anyhow::Result<()> {
        let path = work_dir.join(JOB_RECORD_FILE);
        let tmp = work_dir.join(format!("{JOB_RECORD_FILE}.tmp"));
        fs_err::write(&tmp, serde_json::to_vec(self)?)?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }

    /// The record in `work_dir`, if one was written.
    pub fn read(work_dir: &Path) -> Option<JobRecord> {
        let text = std::fs::read(work_dir.join(JOB_RECORD_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}
