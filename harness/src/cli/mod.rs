//! The `rsfm` command line (DESIGN.md, *CLI contract*). Exit 0 on success, 1 on a failed run,
//! 2 on bad input, 130 when interrupted.

mod cache_cmd;
mod config;
mod eval;
mod explain;
mod kinds;
pub(crate) mod params;
mod plan_cmd;
mod prepare;
mod recipe_paths;
mod report;
mod results;
mod run_cmd;
mod session;
mod sql;
mod status;
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for bad input (recipes, arguments, data files).
pub const EXIT_BAD_INPUT: u8 = 2;

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
    /// Show running, failed and interrupted stages.
    Status(status::StatusArgs),
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
    /// Inspect, verify and clean the stage cache.
    Cache {
        #[command(subcommand)]
        command: cache_cmd::CacheCommand,
    },
}

/// Runs the `rsfm` CLI and returns its exit code.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let results = match session::results_dir(cli.results.clone()) {
        Ok(results) => results,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Plan(args) => plan_cmd::run(args, &results, json).await,
            Command::Run(args) => run_cmd::run(args, &results, json).await,
            Command::Status(args) => status::run(args, &results, json).await,
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
            Command::Cache { command } => cache_cmd::run(command, &results, json).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            match err.downcast_ref::<crate::recipe::RecipeError>() {
                // Recipe errors already read `file:line:col: error: …` with a help line.
                Some(recipe_error) => eprintln!("{recipe_error}"),
                None => eprintln!("error: {err:#}"),
            }
            ExitCode::from(exit_code_for(&err))
        }
    }
}

/// Bad input exits 2, anything else 1.
fn exit_code_for(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|cause| {
        cause.downcast_ref::<crate::recipe::RecipeError>().is_some()
            || cause.downcast_ref::<BadInput>().is_some()
    });
    if bad_input {
        EXIT_BAD_INPUT
    } else {
        1
    }
}

/// An error caused by the user's input (exit code 2), with its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
