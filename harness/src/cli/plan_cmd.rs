//! `rsfm plan RECIPE... [--json] [--data NAME=PATH] [--estimate [--gpu h100|a100|h200]]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{RecipeInputs, Session};
use crate::dataset_roots;
use crate::plan::estimate::{self, Estimate, Gpu};
use crate::plan::Plan;
use crate::recipe::Override;

/// Arguments of `rsfm plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Recipe files, or folders standing for the recipes in them.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
    /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable; VALUE is TOML, checked like
    /// a value in the recipe; its origin reads `cli`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// Root of a dataset, `NAME=PATH` (repeatable); wins over `RSFM_DATA_<NAME>`.
    #[arg(long = "data", value_name = "NAME=PATH")]
    data: Vec<String>,
    /// Also estimate training FLOPs, GPU-hours and peak memory per GPU, per stage and in total.
    #[arg(long)]
    estimate: bool,
    /// The GPU the estimate assumes.
    #[arg(long, value_enum, default_value = "h100", requires = "estimate")]
    gpu: Gpu,
}

/// Prints the plan.
pub async fn run(args: PlanArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let inputs = RecipeInputs {
        paths: &args.recipes,
        overrides: &args.set,
        data: &args.data,
    };
    let session = Session::open_read_only(&inputs, results).await?;
    let plan = session.plan().await?;
    let entries = plan.entries();
    let costs = args.estimate.then(|| estimate::estimate(&plan, args.gpu));
    for warning in plan.shared_key_warnings() {
        eprintln!("warning: {warning}");
    }
    if json {
        let mut out = serde_json::json!({ "stages": entries });
        if let Some(costs) = &costs {
            out["estimate"] = serde_json::to_value(costs)?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("rsfm: results in {}", session.results_dir.display());
    // Several recipes: name each stage's experiment too.
    let several = session.recipes.len() > 1;
    let names: Vec<String> = plan
        .stages
        .iter()
        .map(|s| {
            if several {
                s.display_name()
            } else {
                s.stage.name.clone()
            }
        })
        .collect();
    let header = if several { "experiment/stage" } else { "stage" };
    let width = names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(header.len());
    println!("{header:<width$}  {:<7}  {:<12}  needs", "status", "key");
    for (entry, name) in entries.iter().zip(&names) {
        println!(
            "{name:<width$}  {:<7}  {:<12}  {}",
            entry.status,
            crate::query::short_key(&entry.key),
            entry.needs.join(", "),
        );
    }
    let cached = entries.iter().filter(|e| e.status == "cached").count();
    let no_data = entries.iter().filter(|e| e.status == "no-data").count();
    println!(
        "{} stages: {cached} cached, {} pending{}",
        entries.len(),
        entries.len() - cached - no_data,
        if no_data > 0 {
            format!(", {no_data} waiting for data (keys provisional)")
        } else {
            String::new()
        }
    );
    print_missing_data(&session, &plan);
    if let Some(costs) = &costs {
        print!("{}", render_estimate(costs));
    }
    Ok(ExitCode::SUCCESS)
}

/// Names the missing datasets and how to provide them.
fn print_missing_data(session: &Session, plan: &Plan) {
    let names: std::collections::BTreeSet<&str> = plan
        .stages
        .iter()
        .flat_map(|s| s.missing_data.iter().map(String::as_str))
        .collect();
    let missing = dataset_roots::missing(&session.recipes, |name| names.contains(name));
    if !missing.is_empty() {
        println!(
            "{}",
            dataset_roots::describe_missing(&missing).replacen("; nothing was run", "", 1)
        );
    }
}

/// The estimate as a text table with its totals and assumptions.
pub fn render_estimate(costs: &Estimate) -> String {
    let gib = |bytes: f64| bytes / (1u64 << 30) as f64;
    let width = costs
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut text = format!(
        "\nestimate on {} ({:.0} TFLOP/s bf16 peak, {:.0} GB) at {:.0}% MFU\n",
        costs.gpu.name(),
        costs.gpu.peak_flops() / 1e12,
        costs.gpu.memory_bytes() / 1e9,
        costs.mfu * 100.0
    );
    text += &format!(
        "{:<width$}  {:>8}  {:>10}  {:>4}  {:>10}  {:>9}  {:>9}  fits one GPU\n",
        "stage", "params", "FLOPs", "GPUs", "GPU-hours", "mem GiB", "ckpt GiB"
    );
    for s in &costs.stages {
        let fits = match (s.fits, s.fits_checkpointed) {
            (true, _) => "yes",
            (false, true) => "with checkpointing",
            (false, false) => "no",
        };
        text += &format!(
            "{:<width$}  {:>8}  {:>10.3e}  {:>4}  {:>10.1}  {:>9.1}  {:>9.1}  {fits}\n",
            s.stage,
            super::params::human(s.params as f64),
            s.flops,
            s.gpus,
            s.gpu_hours,
            gib(s.memory.peak()),
            gib(s.memory.peak_checkpointed()),
        );
    }
    let too_big = costs.stages.iter().filter(|s| !s.fits).count();
    let never = costs.stages.iter().filter(|s| !s.fits_checkpointed).count();
    text += &format!(
        "total: {:.3e} training FLOPs, {:.0} GPU-hours on {} ({} stages estimated; {} not: evaluation and commands)\n",
        costs.total_flops,
        costs.total_gpu_hours,
        costs.gpu.name(),
        costs.stages.len(),
        costs.not_estimated.len()
    );
    text += &format!(
        "{too_big} stages do not fit one GPU without activation checkpointing; {never} do not fit even with it\n"
    );
    text += "model: FLOPs ≈ 6 × params × tokens (MAE encoder: visible tokens, decoder: all); memory per GPU = 16 B/param (fp32 weights, grads, AdamW) + bf16 activations at batch/GPUs\n";
    text
}
