//! `rsfm status [--all] [--json]`: running, failed and interrupted stages (the current row of
//! each), with the last lines of a failure's stderr.

use std::path::Path;
use std::process::ExitCode;

use crate::scheduler::{last_lines, FAILURE_TAIL_LINES};
use crate::store::{StageFilter, StageStatus, Store};

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
    for row in &rows {
        println!(
            "{:<12} {}/{}  {}  {}",
            row.status.as_str(),
            row.experiment,
            row.name,
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
            println!("             {label}: {error}");
            let tail = row.stderr_tail.as_deref().unwrap_or("");
            for line in last_lines(tail, FAILURE_TAIL_LINES) {
                println!("                 {line}");
            }
        }
        if let Some(log) = &row.log_path {
            println!("             log:   {log}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
