//! `rsfm run` as a call: a [`RunRequest`] in, a [`RunOutcome`] out. The command line maps its
//! arguments to a request and prints the outcome; notes on the way go to a callback.

use std::path::PathBuf;
use std::sync::Arc;

use crate::dataset_roots;
use crate::error::BadInput;
use crate::executor::command_line::find_worker;
use crate::executor::slurm::detach::{self, submit::Submitted};
use crate::executor::slurm::{preflight, settings::SlurmSettings, SlurmExecutor};
use crate::executor::Executor;
use crate::plan::Plan;
use crate::recipe::Override;
use crate::scheduler::{self, gpus, is_forced, RunContext, RunOptions, RunSummary};
use crate::session::{RecipeInputs, Session};

/// Where a run's stages run (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// This machine.
    Local,
    /// One `sbatch` job per stage.
    Slurm,
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Recipe files or folders.
    pub recipes: Vec<PathBuf>,
    /// `--set` overrides.
    pub overrides: Vec<Override>,
    /// `--data NAME=PATH` dataset roots.
    pub data: Vec<String>,
    /// The results directory.
    pub results: PathBuf,
    /// `--gpus`: `auto`, `none` or device ids.
    pub gpus: String,
    /// Stages at once, at most (default: 1 locally, every stage on Slurm).
    pub jobs: Option<usize>,
    /// Where stages run.
    pub backend: Backend,
    /// Plan and check only.
    pub dry_run: bool,
    /// Stages to rerun even when cached.
    pub force: Vec<String>,
    /// Submit everything to Slurm and return.
    pub detach: bool,
    /// Go on after a failure with what does not need it.
    pub keep_going: bool,
    /// No progress bars (`--json`).
    pub hide_progress: bool,
}

/// What a run did.
#[derive(Debug)]
pub enum RunOutcome {
    /// `--dry-run`: each stage (`forced`, `cached` or `would run`, and its name), and the error
    /// a run would have stopped at before starting (missing datasets), if any.
    DryRun {
        /// The stages, in plan order.
        stages: Vec<(&'static str, String)>,
        /// Why a run would refuse to start.
        refused: Option<anyhow::Error>,
    },
    /// `--detach`: the jobs submitted.
    Detached(Submitted),
    /// The stages ran.
    Ran {
        /// What ended how.
        summary: RunSummary,
        /// Under Slurm: how busy the cluster kept the run's jobs.
        load_report: Option<String>,
    },
}

/// How a finished run is recorded in the store and ends the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every stage ran or was cached.
    Succeeded,
    /// A stage failed.
    Failed,
    /// Ctrl-C or SIGTERM stopped it.
    Interrupted,
}

impl RunStatus {
    /// The status of a run that ended with `summary`.
    pub fn of(summary: &RunSummary) -> RunStatus {
        if summary.was_interrupted() {
            RunStatus::Interrupted
        } else if summary.failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }
    }

    /// Its name in the store's `invocations.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A line the run says on the way, before its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Where the results go, or that stages run on CPU: for a reader at the terminal.
    Info(String),
    /// Something the user should know even when the output is read by a program.
    Warning(String),
}

/// Runs `request`'s pending stages; `note` receives what the run says on the way.
pub async fn run(request: &RunRequest, note: impl Fn(Note)) -> anyhow::Result<RunOutcome> {
    let slurm = request.backend == Backend::Slurm;
    if request.detach && !slurm {
        return Err(BadInput::msg(
            "rsfm run --detach: only the Slurm backend runs stages without rsfm: add `--backend slurm`",
        ));
    }
    let gpus = if slurm {
        Vec::new()
    } else {
        gpus::resolve(&request.gpus).map_err(BadInput::wrap)?
    };
    if slurm && !request.dry_run {
        preflight::check_controller().await?;
    }
    let inputs = RecipeInputs {
        paths: &request.recipes,
        overrides: &request.overrides,
        data: &request.data,
    };
    let session = Session::open(&inputs, &request.results).await?;
    // Held until the run ends: `cache gc` removes nothing while a run may use an entry.
    let _in_use = crate::lock::lock_shared(&session.results_dir, crate::lock::RESULTS_IN_USE)?;
    let swept = session.cache.sweep_orphans()?;
    if swept > 0 {
        tracing::info!("removed {swept} unfinished build dirs left by runs that are gone");
    }
    session.store.mark_stale_running_interrupted().await?;
    let plan = session.plan().await?;
    check_forced(&plan, &request.force)?;
    note(Note::Info(format!(
        "rsfm: results in {}",
        session.results_dir.display()
    )));
    for warning in plan.shared_key_warnings() {
        note(Note::Warning(format!("warning: {warning}")));
    }
    let pending = || {
        plan.stages
            .iter()
            .filter(|s| !s.cached || is_forced(s, &request.force))
    };
    if !slurm {
        crate::executor::local::refuse_multi_node(pending())?;
    }
    if request.dry_run {
        return Ok(RunOutcome::DryRun {
            stages: dry_run_lines(&plan, &request.force),
            // What the run would refuse, the dry run refuses too (exit 2, the same message).
            refused: refuse_missing_data(&session, &plan).err(),
        });
    }
    refuse_missing_data(&session, &plan)?;
    let slurm_settings = if slurm {
        let settings = SlurmSettings::load(&session.results_dir, &session.recipes)?;
        preflight::check_submissions(&settings, pending())
            .await
            .map_err(BadInput::wrap)?;
        Some(settings)
    } else {
        None
    };
    let argv: Vec<String> = std::env::args().collect();
    let invocation_id = session.store.begin_invocation(&argv).await?;
    let context = |executor: Executor| RunContext {
        results_dir: session.results_dir.clone(),
        cache: session.cache.clone(),
        store: session.store.clone(),
        invocation_id,
        worker: find_worker(),
        executor,
    };
    if let (true, Some(settings)) = (request.detach, &slurm_settings) {
        let ctx = context(Executor::Local);
        return detach_run(&session, &plan, &ctx, settings, &request.force).await;
    }
    let executor = match slurm_settings {
        Some(settings) => Executor::Slurm(Arc::new(
            SlurmExecutor::start(settings, invocation_id).await?,
        )),
        None => Executor::Local,
    };
    if gpus.is_empty() && !slurm {
        note(Note::Info(format!(
            "rsfm: no GPUs in use (--gpus {}): stages run on CPU",
            request.gpus
        )));
    }
    let options = RunOptions {
        jobs: request
            .jobs
            .unwrap_or(if slurm { plan.stages.len().max(1) } else { 1 }),
        gpus,
        keep_going: request.keep_going,
        force: request.force.clone(),
        hide_progress: request.hide_progress,
    };
    let summary = scheduler::run(&plan, Arc::new(context(executor.clone())), &options).await?;
    session
        .store
        .finish_invocation(
            invocation_id,
            RunStatus::of(&summary).as_str(),
            &serde_json::to_value(&summary)?,
        )
        .await?;
    let load_report = match &executor {
        Executor::Slurm(slurm) => Some(slurm.load_report()),
        Executor::Local => None,
    };
    Ok(RunOutcome::Ran {
        summary,
        load_report,
    })
}

/// Each stage of `plan` with what a run would do with it.
fn dry_run_lines(plan: &Plan, force: &[String]) -> Vec<(&'static str, String)> {
    plan.stages
        .iter()
        .map(|stage| {
            let status = if is_forced(stage, force) {
                "forced"
            } else if stage.cached {
                "cached"
            } else {
                "would run"
            };
            (status, stage.display_name())
        })
        .collect()
}

/// Submits the run detached and records the submission in the store.
async fn detach_run(
    session: &Session,
    plan: &Plan,
    ctx: &RunContext,
    settings: &SlurmSettings,
    force: &[String],
) -> anyhow::Result<RunOutcome> {
    let run = detach::run_id(ctx.invocation_id);
    let submitted = detach::submit::submit(plan, ctx, settings, force, &run).await;
    let (status, summary) = match &submitted {
        Ok(s) => ("detached", serde_json::to_value(s)?),
        Err(_) => ("failed", serde_json::Value::Null),
    };
    session
        .store
        .finish_invocation(ctx.invocation_id, status, &summary)
        .await?;
    Ok(RunOutcome::Detached(submitted?))
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
