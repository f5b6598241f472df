//! `rsfm cancel RUN`: cancels the jobs of detached run RUN that are not ingested yet (`scancel`)
//! and marks them cancelled; their stages never enter the cache.

use std::path::Path;
use std::process::ExitCode;

use super::session::open_store;
use super::BadInput;
use crate::executor::slurm::detach::cancel_jobs;

/// Arguments of `rsfm cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The run id `rsfm run --detach` printed (`detach-N`).
    run: String,
}

/// Cancels the run's queued and running jobs.
pub async fn run(args: CancelArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(results).await?;
    let Some(jobs) = store.detached_jobs(&args.run).await? else {
        let runs = store.detached_runs(false).await?;
        return Err(BadInput::msg(format!(
            "rsfm cancel {}: no such detached run in {} (runs: {})",
            args.run,
            store.path().display(),
            if runs.is_empty() {
                "none".to_string()
            } else {
                runs.join(", ")
            }
        )));
    };
    let queued: Vec<_> = jobs.iter().filter(|j| j.is_queued()).collect();
    let ids: Vec<u64> = queued.iter().map(|j| j.job_id).collect();
    cancel_jobs(&ids).await?;
    for job in &queued {
        store
            .detached_job_ended(
                &job.run_id,
                &job.stage_key,
                "cancelled",
                Some("cancelled by rsfm cancel"),
            )
            .await?;
    }
    store.detached_run_cancelled(&args.run).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "run": args.run, "cancelled": ids })
        );
    } else {
        println!(
            "{}: cancelled {} Slurm job{}",
            args.run,
            ids.len(),
            if ids.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
