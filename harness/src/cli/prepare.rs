//! `rsfm prepare --stage stage.json --out DIR`: runs one `prepare` stage (the executor's
//! command line for that kind, as `rsfm-worker run` is for the others). Writes the dataset (or,
//! for the `rescore-*` ops, only the scores) and `metrics.json` into DIR and prints one `log`
//! event; no libtorch.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rsfm_model::data::prepare::{rescore, run_prepare};
use rsfm_model::params::{PrepareParams, Schema};
use rsfm_model::protocol::{Event, StageSpec, METRICS_FILE};

use super::BadInput;

/// Arguments of `rsfm prepare`.
#[derive(Debug, Clone, Args)]
pub struct PrepareArgs {
    /// The stage's `stage.json` (written by `rsfm run`).
    #[arg(long)]
    pub stage: PathBuf,
    /// Output folder: the prepared dataset and `metrics.json`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs the stage; bad `stage.json` or source data is bad input (exit 2).
pub fn run(args: &PrepareArgs) -> anyhow::Result<ExitCode> {
    let text = fs_err::read_to_string(&args.stage)?;
    let spec: StageSpec = serde_json::from_str(&text)
        .map_err(|e| BadInput::msg(format!("{}: {e}", args.stage.display())))?;
    if spec.kind != "prepare" {
        return Err(BadInput::msg(format!(
            "{}: kind `{}`: rsfm prepare runs `prepare` stages only (rsfm-worker runs the others)",
            args.stage.display(),
            spec.kind
        )));
    }
    let map = spec.params.as_object().cloned().unwrap_or_default();
    let params = PrepareParams::from_map(map)
        .map_err(|e| BadInput::msg(format!("{}: params: {e}", args.stage.display())))?;
    params
        .validate()
        .map_err(|e| BadInput::msg(format!("{}: params: {e:#}", args.stage.display())))?;
    let source = match &params.dataset {
        Some(name) => Some(spec.datasets.get(name).with_context(|| {
            format!(
                "{}: dataset `{name}` has no root in `datasets`",
                args.stage.display()
            )
        })?),
        None => None,
    };
    fs_err::create_dir_all(&args.out)?;
    let metrics = match (params.op.is_rescore(), &params.predictions, source) {
        (true, Some(predictions), Some(source)) => {
            let evaluation = spec.inputs.get(predictions).with_context(|| {
                format!(
                    "{}: `predictions = \"{predictions}\"` is not among the stage's inputs",
                    args.stage.display()
                )
            })?;
            rescore(&params, source, evaluation).map_err(BadInput::wrap)?
        }
        _ => run_prepare(&params, source.map(PathBuf::as_path), spec.seed, &args.out)
            .map_err(BadInput::msg)?,
    };
    fs_err::write(
        args.out.join(METRICS_FILE),
        serde_json::to_vec_pretty(&metrics)?,
    )?;
    let event = Event::Log {
        level: "info".into(),
        msg: format!("{}: {metrics}", params.op.as_str()),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(&event)?)?;
    Ok(ExitCode::SUCCESS)
}
