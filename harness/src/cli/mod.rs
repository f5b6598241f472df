//! The `rsfm` command line (DESIGN.md, *CLI contract*). Exit 0 on success, 1 on a failed run,
//! 2 on bad input, 130 when interrupted: [`main`] decides the code, from [`Ended`] or from the
//! error's class ([`crate::error`]), and prints an error once, with its whole chain.

mod audit;
mod cache_cmd;
mod cancel;
mod config;
mod eval;
mod explain;
mod export;
mod ingest;
mod kinds;
pub(crate) mod params;
mod plan_cmd;
mod prepare;
mod report;
mod results;
mod run_cmd;
mod sql;
mod status;
mod submit;
mod synth;
mod weights;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::session;

pub use crate::error::BadInput;

/// Exit code for bad input (recipes, arguments, data files).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a run in which a stage failed.
const EXIT_FAILED: u8 = 1;
/// Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// How a command that did not hit an error ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Everything asked for was done.
    Success,
    /// A stage failed (the run itself worked).
    StagesFailed,
    /// Stopped by a signal.
    Interrupted,
}

impl From<Ended> for ExitCode {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Success => ExitCode::SUCCESS,
            Ended::StagesFailed => ExitCode::from(EXIT_FAILED),
            Ended::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
        }
    }
}

/// A billion-scale remote-sensing foundation model study, reproducible from recipes.
#[derive(Debug, Parser)]
#[command(name = "rsfm", version, propagate_version = true)]
struct Cli {
    /// Results directory (database, cache, work dirs). Default: `$RSFM_RESULTS` when set and
    /// not empty, else `results/` in the project (the nearest folder upwards with `rsfm.toml`
    /// or `.git`, else the current folder).
    #[arg(long, global = true)]
    results: Option<PathBuf>,
    /// Machine-readable JSON output (a documented, stable contract per command).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the stages of recipes, their keys, and whether each is cached or pending.
    Plan(plan_cmd::PlanArgs),
    /// Run the pending stages of recipes.
    Run(run_cmd::RunArgs),
    /// Show running, failed and interrupted stages; reattach to detached Slurm runs.
    Status(status::StatusArgs),
    /// Cancel the Slurm jobs of a detached run.
    Cancel(cancel::CancelArgs),
    /// The body of a detached Slurm job: run one stage, commit its cache entry (internal).
    #[command(hide = true)]
    StageJob {
        /// The job's `detach-job.json`.
        spec: PathBuf,
    },
    /// Explain why stages are pending: the key fields that changed since their last cached run.
    Explain(explain::ExplainArgs),
    /// Show a resolved recipe.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Query metrics of finished stages.
    Results(results::ResultsArgs),
    /// Run one read-only SQL statement on the results database.
    Sql(sql::SqlArgs),
    /// Computed vs reported parameter count of a model preset.
    Params(params::ParamsArgs),
    /// Each stage kind's parameters: type, default and doc.
    Kinds(kinds::KindsArgs),
    /// Write synthetic data in a dataset's real on-disk format.
    Synth(synth::SynthArgs),
    /// Run one `prepare` stage from its `stage.json` (what `rsfm run` starts for that kind).
    Prepare(prepare::PrepareArgs),
    /// Score detection or segmentation outputs against ground truth.
    Eval(eval::EvalArgs),
    /// Render the paper's tables (reproduced beside reported) and plots from current results.
    Report(report::ReportArgs),
    /// Write the archive an evaluation server expects from a test-split evaluation's predictions.
    Submit(submit::SubmitArgs),
    /// Store the score an evaluation server sent back as test-server metrics of its stage.
    Ingest(ingest::IngestArgs),
    /// Rerun cached stages in a scratch dir: identical, within tolerance, or not reproducible.
    Audit(audit::AuditArgs),
    /// Write the stages' curves, final metrics and parameters as TensorBoard event files or an
    /// MLflow file store (offline, from rsfm.db).
    Export(export::ExportArgs),
    /// Published checkpoints in (`import`: .pth or safetensors to rsfm's timm names) and rsfm's
    /// out (`export`: timm or MMEngine layout).
    Weights(weights::WeightsArgs),
    /// Inspect, verify and clean the stage cache.
    Cache {
        #[command(subcommand)]
        command: cache_cmd::CacheCommand,
    },
}

/// Runs the `rsfm` CLI and returns its exit code.
pub fn main() -> ExitCode {
    init_tracing();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return exit_with(&anyhow::Error::new(err).context("cannot start the async runtime"))
        }
    };
    let uses_results = !matches!(
        cli.command,
        Command::Config { .. }
            | Command::Params(_)
            | Command::Kinds(_)
            | Command::Synth(_)
            | Command::Eval(_)
            | Command::Prepare(_)
            | Command::Weights(_)
    );
    let results = match session::results_dir(cli.results.clone()).and_then(|dir| {
        if uses_results {
            crate::results_dir::check_results_folder(&dir)?;
        }
        Ok(dir)
    }) {
        Ok(results) => results,
        Err(err) => return exit_with(&err),
    };
    let json = cli.json;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Plan(args) => plan_cmd::run(args, &results, json).await,
            Command::Run(args) => run_cmd::run(args, &results, json).await,
            Command::Status(args) => status::run(args, &results, json).await,
            Command::Cancel(args) => cancel::run(args, &results, json).await,
            Command::StageJob { spec } => crate::executor::slurm::detach::job::run(&spec)
                .await
                .map(|code| ExitCode::from(u8::try_from(code).unwrap_or(1))),
            Command::Explain(args) => explain::run(args, &results, json).await,
            Command::Config { command } => config::run(command, json),
            Command::Results(args) => results::run(args, &results, json).await,
            Command::Sql(args) => sql::run(args, &results, json).await,
            Command::Params(args) => params::run(&args, json),
            Command::Kinds(args) => kinds::run(&args, json),
            Command::Synth(args) => synth::run(&args, json),
            Command::Eval(args) => eval::run(&args, json),
            Command::Prepare(args) => prepare::run(&args),
            Command::Report(args) => report::run(args, &results, json).await,
            Command::Audit(args) => audit::run(args, &results, json).await,
            Command::Submit(args) => submit::run(args, &results, json).await,
            Command::Ingest(args) => ingest::run(args, &results, json).await,
            Command::Export(args) => export::run(args, &results, json).await,
            Command::Weights(args) => weights::run(&args, json),
            Command::Cache { command } => cache_cmd::run(command, &results, json).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => exit_with(&err),
    }
}

/// Prints `err` once (nothing for a closed stdout) and returns its exit code.
fn exit_with(err: &anyhow::Error) -> ExitCode {
    if crate::error::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{}",
        crate::query::for_terminal_lines(&crate::error::render(err))
    );
    ExitCode::from(exit_code_for(err))
}

/// Bad input exits 2, anything else 1.
pub(crate) fn exit_code_for(err: &anyhow::Error) -> u8 {
    if crate::error::is_bad_input(err) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILED
    }
}

/// Makes a `print!` to a closed stdout (`rsfm config show … | head -1`) end the process quietly
/// with exit 0, as a write error to a pipe means the reader has all it wanted; every other
/// panic reports as before.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        // sqlx's slow-statement warnings (full SQL, ANSI colours) are for RUST_LOG=sqlx=warn.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
