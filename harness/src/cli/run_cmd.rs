//! `rsfm run RECIPE... [--gpus auto|none|0,1] [--jobs N] [--backend local|slurm] [--detach] [--keep-going] [--force STAGE] [--dry-run] [--json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::session::{RecipeInputs, Session};
use super::{BadInput, Ended};
use crate::dataset_roots;
use crate::executor::command_line::find_worker;
use crate::executor::slurm::{detach, preflight, settings::SlurmSettings, SlurmExecutor};
use crate::executor::Executor;
use crate::plan::Plan;
use crate::recipe::Override;
use crate::scheduler::{self, gpus, is_forced, RunContext, RunOptions};

/// Arguments of `rsfm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Recipe files.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
    /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable; VALUE is TOML, checked like
    /// a value in the recipe; its origin reads `cli`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// GPUs to use: `auto` (nvidia-smi), `none`, or device ids like `0,1`.
    #[arg(long, default_value = "auto")]
    gpus: String,
    /// Stages running at once, at most (default: 1 locally, no limit with `--backend slurm`).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Where stages run.
    #[arg(long, value_enum, default_value_t = Backend::Local)]
    backend: Backend,
    /// Show what would run, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rerun this stage (full name or base name) even when cached; repeatable.
    #[arg(long)]
    force: Vec<String>,
    /// With `--backend slurm`: submit every pending stage at once, each job depending on the
    /// jobs of the stages it needs, print the run id and exit (`rsfm status RUN` reattaches).
    #[arg(long)]
    detach: bool,
    /// After a failure, go on with the stages that do not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// Root of a dataset for this run, `NAME=PATH` (repeatable); wins over `RSFM_DATA_<NAME>`
    /// and the recipe's `root`.
    #[arg(long = "data", value_name = "NAME=PATH")]
    data: Vec<String>,
}

/// Where a run's stages run (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// This machine.
    Local,
    /// One `sbatch` job per stage.
    Slurm,
}

/// Runs the recipes' pending stages.
pub async fn run(args: RunArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let slurm = args.backend == Backend::Slurm;
    if args.detach && !slurm {
        return Err(BadInput::msg(
            "rsfm run --detach: only the Slurm backend runs stages without rsfm: add `--backend slurm`",
        ));
    }
    let gpus = if slurm {
        Vec::new()
    } else {
        gpus::resolve(&args.gpus).map_err(BadInput::wrap)?
    };
    if slurm && !args.dry_run {
        preflight::check_controller().await?;
    }
    let inputs = RecipeInputs {
        paths: &args.recipes,
        overrides: &args.set,
        data: &args.data,
    };
    let session = Session::open(&inputs, results).await?;
    // Held until the run ends: `cache gc` removes nothing while a run may use an entry.
    let _in_use = crate::lock::lock_shared(&session.results_dir, crate::lock::RESULTS_IN_USE)?;
    let swept = session.cache.sweep_orphans()?;
    if swept > 0 {
        tracing::info!("removed {swept} unfinished build dirs left by runs that are gone");
    }
    session.store.mark_stale_running_interrupted().await?;
    let plan = session.plan().await?;
    check_forced(&plan, &args.force)?;
    if !json {
        eprintln!("rsfm: results in {}", session.results_dir.display());
    }
    for warning in plan.shared_key_warnings() {
        eprintln!("warning: {warning}");
    }
    if !slurm {
        let pending = plan
            .stages
            .iter()
            .filter(|s| !s.cached || is_forced(s, &args.force));
        crate::executor::local::refuse_multi_node(pending)?;
    }
    if args.dry_run {
        for stage in &plan.stages {
            let status = if is_forced(stage, &args.force) {
                "forced"
            } else if stage.cached {
                "cached"
            } else {
                "would run"
            };
            println!("{:<9} {}", status, stage.display_name());
        }
        // What the run would refuse, the dry run refuses too (exit 2, the same message).
        refuse_missing_data(&session, &plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    refuse_missing_data(&session, &plan)?;
    let slurm_settings = if slurm {
        let settings = SlurmSettings::load(&session.results_dir, &session.recipes)?;
        let pending = plan
            .stages
            .iter()
            .filter(|s| !s.cached || is_forced(s, &args.force));
        preflight::check_submissions(&settings, pending)
            .await
            .map_err(BadInput::wrap)?;
        Some(settings)
    } else {
        None
    };
    let argv: Vec<String> = std::env::args().collect();
    let invocation_id = session.store.begin_invocation(&argv).await?;
    if let (true, Some(settings)) = (args.detach, &slurm_settings) {
        return detach(&session, &plan, settings, &args.force, invocation_id, json).await;
    }
    let executor = match slurm_settings {
        Some(settings) => Executor::Slurm(Arc::new(
            SlurmExecutor::start(settings, invocation_id).await?,
        )),
        None => Executor::Local,
    };
    if gpus.is_empty() && !json && !slurm {
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
        executor: executor.clone(),
    });
    let options = RunOptions {
        jobs: args
            .jobs
            .unwrap_or(if slurm { plan.stages.len().max(1) } else { 1 }),
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
    eprintln!("{}", crate::query::for_terminal_lines(&summary.line()));
    if let Executor::Slurm(slurm) = &executor {
        eprintln!("{}", slurm.load_report());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "executed": summary.executed,
                "cached": summary.cached,
                "shared": summary.shared,
                "failed": summary.failed,
                "skipped": summary.skipped,
                "not_started": summary.not_started,
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

/// Submits the run detached and prints its id (and with `--json` what it submitted).
async fn detach(
    session: &Session,
    plan: &Plan,
    settings: &SlurmSettings,
    force: &[String],
    invocation_id: i64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ctx = RunContext {
        results_dir: session.results_dir.clone(),
        cache: session.cache.clone(),
        store: session.store.clone(),
        invocation_id,
        worker: find_worker(),
        executor: Executor::Local,
    };
    let run = detach::run_id(invocation_id);
    let submitted = detach::submit::submit(plan, &ctx, settings, force, &run).await;
    let status = if submitted.is_ok() {
        "detached"
    } else {
        "failed"
    };
    let summary = match &submitted {
        Ok(s) => serde_json::to_value(s)?,
        Err(_) => serde_json::Value::Null,
    };
    session
        .store
        .finish_invocation(invocation_id, status, &summary)
        .await?;
    let submitted = submitted?;
    if json {
        println!("{summary}");
    } else {
        eprintln!(
            "rsfm: {} jobs submitted in {:.1} s, {} stages cached; `rsfm status {run}` follows them, `rsfm cancel {run}` cancels them",
            submitted.jobs.len(),
            submitted.submit_s,
            submitted.cached
        );
        println!("{run}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Every `--force` name must name a stage of the plan: a typo is bad input, not a silent no-op.
fn check_forced(plan: &Plan, force: &[String]) -> anyhow::Result<()> {
    let unknown: Vec<&String> = force
        .iter()
        .filter(|f| {
            !plan
                .stages
                .iter()
                .any(|s| is_forced(s, std::slice::from_ref(f)))
        })
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = Vec::new();
    for stage in &plan.stages {
        if !known.contains(&stage.stage.base.as_str()) {
            known.push(&stage.stage.base);
        }
    }
    Err(BadInput::msg(format!(
        "--force {}: no such stage (stages: {})",
        unknown
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
        known.join(", ")
    )))
}

/// Fails (bad input) when a dataset that a stage to run reads is missing or misplaced, naming
/// each with its expected layout and how to set its root, before anything runs.
fn refuse_missing_data(session: &Session, plan: &Plan) -> anyhow::Result<()> {
    let wanted: std::collections::BTreeSet<&str> = plan
        .stages
        .iter()
        .filter(|s| !s.cached)
        .flat_map(|s| s.datasets.iter().map(|(name, _)| name.as_str()))
        .collect();
    let missing = dataset_roots::missing(&session.recipes, |name| wanted.contains(name));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BadInput::msg(dataset_roots::describe_missing(&missing)))
    }
}
