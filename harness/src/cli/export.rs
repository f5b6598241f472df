//! `rsfm export tensorboard|mlflow [RECIPE...] [--out DIR]`: the stages of `rsfm.db` as
//! TensorBoard event files or an MLflow file store ([`crate::export`]). Reads the database only
//! (and the recipes, when named): it runs offline, on a login node, at any time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::read_store_for;
use crate::export::{self, ExportSummary, Tracker};
use crate::store::StageScope;

/// Arguments of `rsfm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The format: `tensorboard` (event files) or `mlflow` (an `mlruns/` file store).
    #[arg(value_enum)]
    tracker: Tracker,
    /// Recipes whose stages to export, at the keys they resolve to now (default: the current row
    /// of every stage in the results dir).
    recipes: Vec<PathBuf>,
    /// Output folder (default: <results>/export/tensorboard or <results>/export/mlruns).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes the export and prints a line per run and a total (JSON: [`ExportSummary`]).
pub async fn run(args: ExportArgs, results_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out {
        crate::results_dir::check_output_folder(out, "--out")?;
    }
    let (store, current_keys) = read_store_for(&args.recipes, results_dir).await?;
    let out = args.out.unwrap_or_else(|| {
        results_dir
            .join("export")
            .join(args.tracker.default_folder())
    });
    let summary = export::export(
        &store,
        &StageScope::current(current_keys),
        args.tracker,
        &out,
    )
    .await;
    store.close().await;
    let summary = summary?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &ExportSummary) {
    for run in &summary.runs {
        println!(
            "{}/{}  {} values  {}",
            crate::query::for_terminal(&run.experiment),
            crate::query::for_terminal(&run.name),
            run.points,
            run.path.display()
        );
    }
    let hint = match summary.tracker {
        Tracker::Tensorboard => format!("tensorboard --logdir {}", summary.out.display()),
        Tracker::Mlflow => format!(
            "MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {}",
            summary.out.display()
        ),
    };
    println!(
        "{} runs, {} values in {:.2} s → {} (view: {hint})",
        summary.runs.len(),
        summary.points,
        summary.seconds,
        summary.out.display()
    );
}
