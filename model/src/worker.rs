//! The worker process: `rsfm-worker run --stage stage.json --out DIR [--stop-after N]` runs
//! one stage (see DESIGN.md, *Worker protocol*); `rsfm-worker selftest` checks libtorch.
//!
//! Exit codes: 0 success, 1 the stage failed (e.g. a NaN loss), 2 bad command line or
//! `stage.json`, 3 stopped (by `--stop-after`, SIGTERM or SIGINT) with a resume checkpoint in
//! the work dir: rerunning the same stage continues from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tch::{Device, Kind, Tensor};

use crate::protocol::{StageSpec, METRICS_FILE};
use crate::train::evaluate_det::{self, EvaluateDetParams};
use crate::train::evaluate_seg::{self, EvaluateSegParams};
use crate::train::events::Events;
use crate::train::finetune_det::{self, FinetuneDetParams};
use crate::train::finetune_seg::{self, FinetuneSegParams};
use crate::train::mae_pretrain::{self, MaePretrainParams};
use crate::train::stage::{install_stop_signals, parse_device, Outcome};

const USAGE: &str =
    "usage: rsfm-worker run --stage stage.json --out DIR [--stop-after N] | rsfm-worker selftest";

/// Entry point of `rsfm-worker`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("selftest") => selftest(),
        Some("run") => match RunArgs::parse(&args[1..]) {
            Ok(run_args) => run(&run_args),
            Err(err) => {
                eprintln!("error: {err:#}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
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
    ExitCode::SUCCESS
}

/// Arguments of `rsfm-worker run`.
#[derive(Debug, Clone, PartialEq)]
struct RunArgs {
    stage: PathBuf,
    out: PathBuf,
    stop_after: Option<u64>,
}

impl RunArgs {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let (mut stage, mut out, mut stop_after) = (None, None, None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("`{flag}` needs a value"))?;
            match flag.as_str() {
                "--stage" => stage = Some(PathBuf::from(value)),
                "--out" => out = Some(PathBuf::from(value)),
                "--stop-after" => {
                    stop_after = Some(
                        value
                            .parse()
                            .with_context(|| format!("`--stop-after {value}`: not a step count"))?,
                    )
                }
                other => anyhow::bail!("unknown argument `{other}`"),
            }
        }
        Ok(RunArgs {
            stage: stage.context("missing `--stage stage.json`")?,
            out: out.context("missing `--out DIR`")?,
            stop_after,
        })
    }
}

/// A stage the worker can run, parsed from `stage.json`.
enum Stage {
    MaePretrain(MaePretrainParams),
    FinetuneSeg(FinetuneSegParams),
    EvaluateSeg(EvaluateSegParams),
    FinetuneDet(FinetuneDetParams),
    EvaluateDet(EvaluateDetParams),
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

/// Whether an `evaluate` stage scores detection (`params.task` = `det` or `detection`).
fn is_detection_task(spec: &StageSpec) -> bool {
    matches!(
        spec.params.get("task").and_then(|t| t.as_str()),
        Some("det" | "detection")
    )
}

fn read_stage(path: &Path) -> anyhow::Result<(StageSpec, Stage)> {
    let text = fs_err::read_to_string(path)?;
    let spec: StageSpec = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid stage.json", path.display()))?;
    let stage = match spec.kind.as_str() {
        "mae-pretrain" => Stage::MaePretrain(parse_params(&spec, path, MaePretrainParams::validate)?),
        "finetune-seg" => Stage::FinetuneSeg(parse_params(&spec, path, FinetuneSegParams::validate)?),
        "finetune-det" => Stage::FinetuneDet(parse_params(&spec, path, FinetuneDetParams::validate)?),
        "evaluate" if is_detection_task(&spec) => {
            Stage::EvaluateDet(parse_params(&spec, path, EvaluateDetParams::validate)?)
        }
        "evaluate" => Stage::EvaluateSeg(parse_params(&spec, path, EvaluateSegParams::validate)?),
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
            return ExitCode::from(2);
        }
    };
    let mut events = Events::stdout();
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
        Stage::EvaluateSeg(params) => {
            evaluate_seg::run(&spec, params, &mut events).map(Outcome::Finished)
        }
        Stage::FinetuneDet(params) => {
            finetune_det::run(&spec, params, &args.out, &mut events, args.stop_after)
        }
        Stage::EvaluateDet(params) => {
            evaluate_det::run(&spec, params, &args.out, &mut events).map(Outcome::Finished)
        }
    };
    match result.and_then(|outcome| finish(outcome, &args.out)) {
        Ok(code) => code,
        Err(err) => {
            events.log("error", format!("{err:#}"));
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
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
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Stopped(_) => Ok(ExitCode::from(3)),
    }
}
