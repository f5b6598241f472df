//! `rsfm run RECIPE... [--gpus auto|none|0,1] [--jobs N] [--keep-going] [--force STAGE] [--dry-run] [--json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::session::Session;
use super::{BadInput, Ended};
use crate::executor::command_line::find_worker;
use crate::scheduler::{self, gpus, RunContext, RunOptions};

/// Arguments of `rsfm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Recipe files.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
    /// GPUs to use: `auto` (nvidia-smi), `none`, or device ids like `0,1`.
    #[arg(long, default_value = "auto")]
    gpus: String,
    /// Stages running at once, at most.
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// Executor backend.
    #[arg(long, default_value = "local", value_parser = ["local"])]
    backend: String,
    /// Show what would run, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rerun this stage (full name or base name) even when cached; repeatable.
    #[arg(long)]
    force: Vec<String>,
    /// After a failure, go on with the stages that do not depend on it.
    #[arg(long)]
    keep_going: bool,
}

/// Runs the recipes' pending stages.
pub async fn run(args: RunArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let gpus = gpus::resolve(&args.gpus).map_err(BadInput::wrap)?;
    let session = Session::open(&args.recipes, results).await?;
    let swept = session.cache.sweep_orphans()?;
    if swept > 0 {
        tracing::info!("removed {swept} unfinished build dirs left by runs that are gone");
    }
    session.store.mark_stale_running_interrupted().await?;
    let plan = session.plan().await?;
    if args.dry_run {
        for stage in &plan.stages {
            let status = if stage.cached { "cached" } else { "would run" };
            println!("{:<9} {}", status, stage.display_name());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let argv: Vec<String> = std::env::args().collect();
    let invocation_id = session.store.begin_invocation(&argv).await?;
    if gpus.is_empty() && !json {
        eprintln!(
            "rsfm: no GPUs in use (--gpus {}): stages run on CPU",
            args.gpus
        );
    }
    let ctx = Arc::new(RunContext {
        results_dir: session.results_dir.clone(),
        cache: session.cache.clone(),
        store: session.store.clone(),
        invocation_id,
        worker: find_worker(),
    });
    let options = RunOptions {
        jobs: args.jobs,
        gpus,
        keep_going: args.keep_going,
        force: args.force.clone(),
        hide_progress: json,
    };
    let summary = scheduler::run(&plan, ctx, &options).await?;
    let status = if summary.was_interrupted() {
        "interrupted"
    } else if summary.failed > 0 {
        "failed"
    } else {
        "succeeded"
    };
    session
        .store
        .finish_invocation(invocation_id, status, &serde_json::to_value(&summary)?)
        .await?;
    eprintln!("{}", summary.line());
    if json {
        println!(
            "{}",
            serde_json::json!({
                "executed": summary.executed,
                "cached": summary.cached,
                "failed": summary.failed,
                "skipped": summary.skipped,
                "interrupted": summary.interrupted,
            })
        );
    }
    Ok(match status {
        "interrupted" => Ended::Interrupted,
        "failed" => Ended::StagesFailed,
        _ => Ended::Success,
    }
    .into())
}
