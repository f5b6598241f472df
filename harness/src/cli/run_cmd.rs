//! `rsfm run RECIPE... [--gpus auto|none|0,1] [--jobs N] [--backend local|slurm] [--detach] [--keep-going] [--force STAGE] [--dry-run] [--json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Ended;
use crate::recipe::Override;
use crate::run::{self, Backend, Note, RunOutcome, RunRequest, RunStatus};

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

impl RunArgs {
    /// The run these arguments ask for, its results in `results`.
    fn request(self, results: &Path, json: bool) -> RunRequest {
        RunRequest {
            recipes: self.recipes,
            overrides: self.set,
            data: self.data,
            results: results.to_path_buf(),
            gpus: self.gpus,
            jobs: self.jobs,
            backend: self.backend,
            dry_run: self.dry_run,
            force: self.force,
            detach: self.detach,
            keep_going: self.keep_going,
            hide_progress: json,
        }
    }
}

/// Runs the recipes' pending stages.
pub async fn run(args: RunArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let request = args.request(results, json);
    let outcome = run::run(&request, |note| match note {
        Note::Info(line) if !json => eprintln!("{line}"),
        Note::Info(_) => {}
        Note::Warning(line) => eprintln!("{line}"),
    })
    .await?;
    match outcome {
        RunOutcome::DryRun { stages, refused } => {
            for (status, name) in stages {
                println!("{status:<9} {name}");
            }
            match refused {
                Some(error) => Err(error),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        RunOutcome::Detached(submitted) => {
            if json {
                println!("{}", serde_json::to_value(&submitted)?);
            } else {
                eprintln!(
                    "rsfm: {} jobs submitted in {:.1} s, {} stages cached; `rsfm status {run}` follows them, `rsfm cancel {run}` cancels them",
                    submitted.jobs.len(),
                    submitted.submit_s,
                    submitted.cached,
                    run = submitted.run,
                );
                println!("{}", submitted.run);
            }
            Ok(ExitCode::SUCCESS)
        }
        RunOutcome::Ran {
            summary,
            load_report,
        } => {
            eprintln!("{}", crate::query::for_terminal_lines(&summary.line()));
            if let Some(report) = load_report {
                eprintln!("{report}");
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
            Ok(match RunStatus::of(&summary) {
                RunStatus::Interrupted => Ended::Interrupted,
                RunStatus::Failed => Ended::StagesFailed,
                RunStatus::Succeeded => Ended::Success,
            }
            .into())
        }
    }
}
