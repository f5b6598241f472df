//! `rsfm status [--all] [--json]`: running, failed and interrupted stages (the current row of
//! each), with the last lines of a failure's stderr.

use std::path::Path;
use std::process::ExitCode;

use crate::executor::slurm::{job_record::JobRecord, states_now};
use crate::query::for_terminal;
use crate::scheduler::{last_lines, FAILURE_TAIL_LINES};
use crate::store::{StageFilter, StageRow, StageStatus, Store};

/// Arguments of `rsfm status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// List every stage (superseded rows too), not only current running, failed and
    /// interrupted ones.
    #[arg(long)]
    all: bool,
}

/// Prints the stages that need attention.
pub async fn run(args: StatusArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&results.join("rsfm.db")).await?;
    let statuses = if args.all {
        Vec::new()
    } else {
        vec![
            StageStatus::Running,
            StageStatus::Failed,
            StageStatus::Interrupted,
        ]
    };
    let rows = store
        .stages(&StageFilter {
            statuses,
            current: !args.all,
            ..StageFilter::default()
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no running, failed or interrupted stages");
        return Ok(ExitCode::SUCCESS);
    }
    let jobs: Vec<Option<JobRecord>> = rows.iter().map(slurm_job).collect();
    let ids: Vec<u64> = jobs.iter().flatten().map(|j| j.job_id).collect();
    let states = states_now(&ids).await;
    for (row, job) in rows.iter().zip(&jobs) {
        println!(
            "{:<12} {}/{}  {}  {}",
            row.status.as_str(),
            for_terminal(&row.experiment),
            for_terminal(&row.name),
            crate::query::short_key(&row.key),
            row.finished_at
                .as_deref()
                .or(row.started_at.as_deref())
                .unwrap_or("")
        );
        if let Some(error) = &row.error {
            let label = if row.status == StageStatus::Failed {
                "failed"
            } else {
                "error"
            };
            println!("             {label}: {}", for_terminal(error));
            let tail = row.stderr_tail.as_deref().unwrap_or("");
            for line in last_lines(tail, FAILURE_TAIL_LINES) {
                println!("                 {}", for_terminal(line));
            }
        }
        if let Some(log) = &row.log_path {
            println!("             log:   {}", for_terminal(log));
        }
        if let Some(job) = job {
            let state = states
                .get(&job.job_id)
                .map_or("state unknown", |info| info.state.name());
            println!("             slurm: job {} ({state})", job.job_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Slurm job that ran the row's latest attempt, if the Slurm backend ran it.
fn slurm_job(row: &StageRow) -> Option<JobRecord> {
    let record = JobRecord::read(std::path::Path::new(row.work_dir.as_deref()?))?;
    (Some(record.invocation_id) == row.invocation_id).then_some(record)
}
