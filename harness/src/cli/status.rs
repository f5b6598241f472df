//! `rsfm status [RECIPE...|RUN] [--all] [--clear] [--json]`: running, failed and interrupted
//! stages (the current row of each; with recipes, of the keys they resolve to now), with the last
//! lines of a failure's stderr; `--clear` dismisses the failed and interrupted ones listed.
//! Detached Slurm runs with jobs not yet ingested (or run RUN alone) are reattached first: one
//! state query, the finished jobs ingested, each stage's state shown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{open_store, RecipeInputs, Session};

use super::BadInput;
use crate::executor::slurm::detach::ingest;
use crate::executor::slurm::{job_record::JobRecord, states_now};
use crate::query::for_terminal;
use crate::scheduler::{last_lines, FAILURE_TAIL_LINES};
use crate::store::{StageFilter, StageRow, StageStatus, Store};

/// Arguments of `rsfm status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Recipes whose stages to show, at the keys they resolve to now (default: every stage), or
    /// the id of a detached run (`detach-N`, printed by `rsfm run --detach`).
    recipes: Vec<PathBuf>,
    /// List every stage (superseded and dismissed rows too), not only current running, failed
    /// and interrupted ones.
    #[arg(long, conflicts_with = "clear")]
    all: bool,
    /// Dismiss the failed and interrupted stages this would list (of RECIPE's stages, when
    /// given): `status` no longer shows them until they run again; their rows stay.
    #[arg(long)]
    clear: bool,
}

/// Prints the stages that need attention, or dismisses them (`--clear`).
pub async fn run(args: StatusArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let run = detached_run_arg(&args.recipes);
    reattach(run.as_deref(), results, json).await?;
    if run.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    let (store, keys) = if args.recipes.is_empty() {
        (Store::open_read_only(&results.join("rsfm.db")).await?, None)
    } else {
        let inputs = RecipeInputs {
            paths: &args.recipes,
            ..Default::default()
        };
        let session = Session::open_read_only(&inputs, results).await?;
        let plan = session.plan().await?;
        let keys: Vec<String> = plan.stages.iter().map(|s| s.key.key.clone()).collect();
        (session.store, Some(keys))
    };
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
            keys,
            undismissed: !args.all,
            ..StageFilter::default()
        })
        .await?;
    if args.clear {
        return clear(&rows, results, json).await;
    }
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

/// The detached run named as the one argument: a `detach-N` that is no file.
fn detached_run_arg(args: &[PathBuf]) -> Option<String> {
    match args {
        [one] if !one.exists() => one
            .to_str()
            .filter(|s| {
                s.strip_prefix("detach-")
                    .is_some_and(|n| n.parse::<i64>().is_ok())
            })
            .map(str::to_string),
        _ => None,
    }
}

/// Reattaches to detached run `run` (or to every detached run with jobs not yet ingested) and
/// shows its stages; nothing when there is none.
async fn reattach(run: Option<&str>, results: &Path, json: bool) -> anyhow::Result<()> {
    let db = results.join("rsfm.db");
    if !db.exists() {
        return match run {
            Some(run) => Err(BadInput::msg(format!(
                "no detached run {run}: {} does not exist",
                db.display()
            ))),
            None => Ok(()),
        };
    }
    let runs = match run {
        Some(run) => vec![run.to_string()],
        // A database from before detached runs has none.
        None => Store::open_read_only(&db)
            .await?
            .detached_runs(true)
            .await
            .unwrap_or_default(),
    };
    if runs.is_empty() {
        return Ok(());
    }
    let (results_dir, store) = open_store(results).await?;
    if let Some(run) = run {
        if store.detached_jobs(run).await?.is_none() {
            let known = store.detached_runs(false).await?;
            return Err(BadInput::msg(format!(
                "no detached run {run} in {} (runs: {})",
                db.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let views = ingest::reattach(&store, &results_dir, &runs).await?;
    if json && run.is_some() {
        println!("{}", serde_json::to_string_pretty(&views[0])?);
        return Ok(());
    }
    if json {
        return Ok(());
    }
    for view in &views {
        println!("run {}", view.run);
        for stage in &view.stages {
            println!(
                "  {:<12} {}  job {}{}",
                stage.state,
                for_terminal(&stage.stage),
                stage.job_id,
                stage
                    .reason
                    .as_deref()
                    .map(|r| format!(": {}", for_terminal(r)))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Dismisses the failed and interrupted stages among `rows` and says how many.
async fn clear(rows: &[StageRow], results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let keys: Vec<String> = rows
        .iter()
        .filter(|r| r.status != StageStatus::Running)
        .map(|r| r.key.clone())
        .collect();
    let (_, store) = open_store(results).await?;
    let dismissed = store.dismiss(&keys).await?;
    let running = rows.len() - keys.len();
    if json {
        println!(
            "{}",
            serde_json::json!({ "dismissed": dismissed, "running": running })
        );
    } else {
        println!(
            "dismissed {dismissed} failed or interrupted stage{} (shown again when they run; \
             `status --all` lists them){}",
            if dismissed == 1 { "" } else { "s" },
            if running > 0 {
                format!("; {running} running, kept")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The Slurm job that ran the row's latest attempt, if the Slurm backend ran it.
fn slurm_job(row: &StageRow) -> Option<JobRecord> {
    let record = JobRecord::read(std::path::Path::new(row.work_dir.as_deref()?))?;
    (Some(record.invocation_id) == row.invocation_id).then_some(record)
}
