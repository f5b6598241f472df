//! The worker process: `rsfm-worker run --stage stage.json --out DIR [--stop-after N]` runs
//! one stage (see DESIGN.md, *Worker protocol*); `rsfm-worker selftest` checks libtorch;
//! `rsfm-worker weights import|export` converts published checkpoints (what `rsfm weights` runs).
//!
//! Exit codes: [`WorkerExit`] (0 success, 1 the stage failed, e.g. a NaN loss, 2 bad command line
//! or `stage.json`, 3 stopped with a resume checkpoint in the work dir).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tch::{Device, Kind, Tensor};

use crate::dist::RankEnv;
use crate::params::data::EvalTask;
use crate::params::{EvaluateParams, FinetuneDetParams, FinetuneSegParams, MaePretrainParams};
use crate::protocol::{StageSpec, WorkerExit, METRICS_FILE};
use crate::train::events::Events;
use crate::train::stage::{install_stop_signals, parse_device, Outcome};
use crate::train::{evaluate_det, evaluate_seg, finetune_det, finetune_seg, mae_pretrain};

/// `rsfm-worker`: runs one stage of an rsfm recipe (see DESIGN.md, *Worker protocol*).
#[derive(Debug, Parser)]
#[command(
    name = "rsfm-worker",
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print the crate version, the libtorch it runs with and whether CUDA is available.
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the stage described by a stage.json, writing its outputs into DIR.
    Run {
        /// The stage description the harness wrote.
        #[arg(long, value_name = "stage.json")]
        stage: PathBuf,
        /// Output dir: metrics.json, checkpoints, predictions.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Stop with a resume checkpoint after this many steps (exit 3), as a preemption would.
        #[arg(long, value_name = "N")]
        stop_after: Option<u64>,
    },
    /// A forward pass through a ViT block: proves libtorch loads and computes.
    Selftest,
    /// Published weights in (`import`) and rsfm's out (`export`): what `rsfm weights` runs.
    Weights(crate::weights::command::WeightsArgs),
}

/// Entry point of `rsfm-worker`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                WorkerExit::BadSpec.into()
            } else {
                WorkerExit::Ok.into()
            };
        }
    };
    if cli.version {
        println!("{}", version_text());
        return WorkerExit::Ok.into();
    }
    match cli.command {
        Some(Command::Run {
            stage,
            out,
            stop_after,
        }) => run(&RunArgs {
            stage,
            out,
            stop_after,
        }),
        Some(Command::Selftest) => selftest(),
        Some(Command::Weights(args)) => match crate::weights::command::run(&args) {
            Ok(text) => {
                print!("{text}");
                WorkerExit::Ok.into()
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                WorkerExit::BadSpec.into()
            }
        },
        None => {
            eprintln!("error: give a subcommand: `run` or `selftest` (see --help)");
            WorkerExit::BadSpec.into()
        }
    }
}

/// `rsfm-worker 0.1.0, libtorch 2.11.0 (/path/lib), cuda available: false`.
fn version_text() -> String {
    let libtorch = match loaded_libtorch() {
        Some(lib) => format!(
            "libtorch {} ({})",
            lib.parent()
                .and_then(crate::libtorch_version::libtorch_version)
                .unwrap_or_else(|| "of unknown version".to_string()),
            lib.display()
        ),
        None => "libtorch not found among the loaded libraries".to_string(),
    };
    format!(
        "rsfm-worker {}, {libtorch}, cuda available: {}",
        env!("CARGO_PKG_VERSION"),
        tch::Cuda::is_available()
    )
}

/// The folder of the `libtorch_cpu` this process has loaded, from `/proc/self/maps`.
fn loaded_libtorch() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("libtorch_cpu."))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// A tiny forward pass through a ViT block: proves libtorch loads and computes.
fn selftest() -> ExitCode {
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let dims = crate::nn::layers::BlockDims {
        dim: 8,
        num_heads: 2,
        mlp_hidden: 16,
        qkv_bias: true,
    };
    let block = crate::nn::layers::Block::new(vs.root(), dims, 1, 0.0);
    let x = Tensor::ones([1, 4, 8], (Kind::Float, Device::Cpu));
    let y = block.forward(&x, crate::nn::layers::TokenMixing::Global, false);
    println!("selftest ok: libtorch forward pass through a ViT block gives shape {:?}, cuda available: {}", y.size(), tch::Cuda::is_available());
    WorkerExit::Ok.into()
}

/// Arguments of `rsfm-worker run`.
#[derive(Debug, Clone, PartialEq)]
struct RunArgs {
    stage: PathBuf,
    out: PathBuf,
    stop_after: Option<u64>,
}

/// A stage the worker can run, parsed from `stage.json`.
enum Stage {
    MaePretrain(MaePretrainParams),
    FinetuneSeg(FinetuneSegParams),
    FinetuneDet(FinetuneDetParams),
    Evaluate(EvaluateParams),
}

/// Parses `params` for `kind` and validates them.
fn parse_params<T: serde::de::DeserializeOwned>(
    spec: &StageSpec,
    path: &Path,
    validate: impl Fn(&T) -> anyhow::Result<()>,
) -> anyhow::Result<T> {
    let params: T = serde_json::from_value(spec.params.clone()).with_context(|| {
        format!(
            "{}: invalid `params` for kind `{}`",
            path.display(),
            spec.kind
        )
    })?;
    validate(&params).with_context(|| format!("{}: invalid `params`", path.display()))?;
    Ok(params)
}

fn read_stage(path: &Path) -> anyhow::Result<(StageSpec, Stage)> {
    let text = fs_err::read_to_string(path)?;
    let spec: StageSpec = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid stage.json", path.display()))?;
    let stage = match spec.kind.as_str() {
        "mae-pretrain" => Stage::MaePretrain(parse_params(&spec, path, MaePretrainParams::validate)?),
        "finetune-seg" => Stage::FinetuneSeg(parse_params(&spec, path, FinetuneSegParams::validate)?),
        "finetune-det" => Stage::FinetuneDet(parse_params(&spec, path, FinetuneDetParams::validate)?),
        "evaluate" => Stage::Evaluate(parse_params(&spec, path, EvaluateParams::validate)?),
        other => anyhow::bail!(
            "{}: `kind` = `{other}` is not supported by this worker (supported: mae-pretrain, finetune-seg, finetune-det, evaluate)",
            path.display()
        ),
    };
    parse_device(&spec.device).with_context(|| format!("{}: invalid `device`", path.display()))?;
    Ok((spec, stage))
}

fn run(args: &RunArgs) -> ExitCode {
    let (spec, stage) = match read_stage(&args.stage) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: {err:#}");
            return WorkerExit::BadSpec.into();
        }
    };
    // Under a data-parallel launch every rank runs this; rank 0 alone reports and writes.
    let leader = match RankEnv::from_env() {
        Ok(env) => env.is_none_or(|env| env.is_leader()),
        Err(err) => {
            eprintln!("error: {err:#}");
            return WorkerExit::BadSpec.into();
        }
    };
    if !leader && matches!(stage, Stage::Evaluate(_)) {
        // Evaluation is not data parallel: rank 0 evaluates alone.
        return WorkerExit::Ok.into();
    }
    let mut events = if leader {
        Events::stdout()
    } else {
        Events::discard()
    };
    if let Err(err) = install_stop_signals() {
        events.log("warn", format!("cannot catch SIGTERM/SIGINT, a stop will lose progress since the last checkpoint: {err}"));
    }
    let result = match &stage {
        Stage::MaePretrain(params) => {
            mae_pretrain::run(&spec, params, &args.out, &mut events, args.stop_after)
        }
        Stage::FinetuneSeg(params) => {
            finetune_seg::run(&spec, params, &args.out, &mut events, args.stop_after)
        }
        Stage::FinetuneDet(params) => {
            finetune_det::run(&spec, params, &args.out, &mut events, args.stop_after)
        }
        Stage::Evaluate(params) => match params.task {
            Some(EvalTask::Det) => evaluate_det::run(&spec, params, &args.out, &mut events),
            _ => evaluate_seg::run(&spec, params, &args.out, &mut events),
        }
        .map(Outcome::Finished),
    };
    let finished = match result {
        Ok(Outcome::Finished(_)) if !leader => Ok(WorkerExit::Ok.into()),
        result => result.and_then(|outcome| finish(outcome, &args.out)),
    };
    match finished {
        Ok(code) => code,
        Err(err) => {
            events.log("error", format!("{err:#}"));
            eprintln!("error: {err:#}");
            WorkerExit::Failed.into()
        }
    }
}

fn finish(outcome: Outcome, out: &Path) -> anyhow::Result<ExitCode> {
    match outcome {
        Outcome::Finished(metrics) => {
            fs_err::create_dir_all(out)?;
            let tmp = out.join(format!("{METRICS_FILE}.tmp"));
            fs_err::write(&tmp, serde_json::to_vec_pretty(&metrics)?)?;
            fs_err::rename(&tmp, out.join(METRICS_FILE))?;
            Ok(WorkerExit::Ok.into())
        }
        Outcome::Stopped(_) => Ok(WorkerExit::Stopped.into()),
    }
}
