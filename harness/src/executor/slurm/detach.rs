//! Detached Slurm runs (`rsfm run --backend slurm --detach`): every pending stage is submitted
//! at once, each job depending on the jobs of the stages it needs (`--dependency=afterok:…`,
//! `--kill-on-invalid-dep=yes`), and the run exits. Each job runs the stage, then commits its own
//! cache entry (`rsfm stage-job`, the scheduler's commit); it writes files only (the entry, its
//! log, `detach-end.json`), never `rsfm.db`. `rsfm status` asks Slurm for the run's jobs once and
//! ingests the finished ones into the store: the harness stays the database's one writer.

pub mod ingest;
pub mod job;
pub mod spec;
pub mod submit;

/// The id of the detached run of invocation `invocation_id`.
pub fn run_id(invocation_id: i64) -> String {
    format!("detach-{invocation_id}")
}

/// Cancels `jobs` (`scancel`; nothing to do for none).
pub async fn cancel_jobs(jobs: &[super::states::JobId]) -> anyhow::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    super::commands::scancel(jobs).await
}
