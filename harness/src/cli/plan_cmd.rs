//! `rsfm plan RECIPE... [--json] [--data NAME=PATH] [--estimate [--gpu h100|a100|h200]]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{RecipeInputs, Session};
use crate::dataset_roots;
use serde_json::Value;

use crate::plan::estimate::{self, Estimate, Gpu};
use crate::plan::sensitivity::{self, Sensitivity};
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
    /// List the assumed or reconstructed values upstream of this evaluate stage (a cell of the
    /// report), with alternatives and their cost, and write one recipe per alternative.
    #[arg(long, value_name = "STAGE")]
    sensitivity: Option<String>,
    /// GPU-hours (H100) the written sweep may cost: cheapest alternatives first.
    #[arg(long, value_name = "GPU_HOURS", requires = "sensitivity")]
    budget: Option<f64>,
    /// Where the sweep's recipes go (default: `<results>/sensitivity/`).
    #[arg(long, value_name = "DIR", requires = "sensitivity")]
    sensitivity_out: Option<PathBuf>,
}

/// Prints the plan.
pub async fn run(args: PlanArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let inputs = RecipeInputs {
        paths: &args.recipes,
        overrides: &args.set,
        data: &args.data,
    };
    let session = Session::open_read_only(&inputs, results).await?;
    // An estimate needs no key: without a worker, its stages' keys are provisional.
    let plan = if args.estimate {
        Plan::build_provisional(&session.recipes, &session.store, &session.cache).await?
    } else {
        session.plan().await?
    };
    let entries = plan.entries();
    let costs = args.estimate.then(|| estimate::estimate(&plan, args.gpu));
    for warning in plan.shared_key_warnings() {
        eprintln!("warning: {warning}");
    }
    if let Some(cell) = &args.sensitivity {
        let out = args
            .sensitivity_out
            .clone()
            .unwrap_or_else(|| session.results_dir.join("sensitivity"));
        let found = sensitivity(&session.recipes, &plan, cell, args.budget, &out)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&found)?);
        } else {
            print!("{}", render_sensitivity(&found));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        let mut out = serde_json::json!({ "stages": entries });
        if let Some(worker) = &plan.missing_worker {
            out["missing_worker"] = Value::from(worker.display().to_string());
        }
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
    if let Some(worker) = &plan.missing_worker {
        println!("{}", provisional_keys_note(worker));
    }
    if let Some(costs) = &costs {
        print!("{}", render_estimate(costs));
    }
    Ok(ExitCode::SUCCESS)
}

/// The sensitivity plan of `cell`, its recipes written to `out`.
fn sensitivity(
    recipes: &[crate::recipe::Recipe],
    plan: &Plan,
    cell: &str,
    budget: Option<f64>,
    out: &Path,
) -> anyhow::Result<Sensitivity> {
    let hours = estimate::gpu_hours_by_stage(plan, Gpu::H100);
    let (index, assumed) = sensitivity::assumed_upstream(plan, cell, &hours)?;
    let planned = &plan.stages[index];
    let recipe = recipes
        .iter()
        .find(|r| r.experiment.name == planned.experiment)
        .map(|r| r.path.clone())
        .ok_or_else(|| anyhow::anyhow!("no recipe of experiment {}", planned.experiment))?;
    let (recipes, gpu_hours) = sensitivity::write_recipes(out, &recipe, planned, &assumed, budget)?;
    Ok(Sensitivity {
        cell: planned.display_name(),
        assumed,
        recipes,
        gpu_hours,
    })
}

/// The sensitivity plan as text: one line per assumed value, then the recipes written.
fn render_sensitivity(found: &Sensitivity) -> String {
    let mut text = format!(
        "{}: {} assumed or reconstructed values upstream (GPU-hours on H100, `--estimate`)\n",
        found.cell,
        found.assumed.len()
    );
    for a in &found.assumed {
        let alternatives: Vec<String> = a.alternatives.iter().map(Value::to_string).collect();
        let tried = if alternatives.is_empty() {
            "no alternative known: set one by hand".to_string()
        } else {
            format!(
                "try {}: {:.1} GPU-h each ({} stages rerun)",
                alternatives.join(", "),
                a.gpu_hours,
                a.reruns
            )
        };
        text.push_str(&format!(
            "  {}.{} = {} ({})\n      {tried}\n",
            a.base, a.param, a.value, a.source
        ));
    }
    text.push_str(&format!(
        "{} recipes written ({:.1} GPU-h in all):\n",
        found.recipes.len(),
        found.gpu_hours
    ));
    for recipe in &found.recipes {
        text.push_str(&format!("  {}\n", recipe.display()));
    }
    text
}

/// Names the missing or misplaced datasets, the stages waiting for them and how to provide
/// them. `plan` itself exits 0 (it is how one looks at a study, and estimates it, before the
/// data is there); `run` and `run --dry-run` refuse these stages with exit 2.
fn print_missing_data(session: &Session, plan: &Plan) {
    let names: std::collections::BTreeSet<&str> = plan
        .stages
        .iter()
        .flat_map(|s| s.missing_data.iter().map(String::as_str))
        .collect();
    let missing = dataset_roots::missing(&session.recipes, |name| names.contains(name));
    if !missing.is_empty() {
        let waiting: Vec<String> = plan
            .stages
            .iter()
            .filter(|s| !s.missing_data.is_empty())
            .map(|s| {
                if session.recipes.len() > 1 {
                    s.display_name()
                } else {
                    s.stage.name.clone()
                }
            })
            .collect();
        let shown: Vec<&str> = waiting.iter().take(8).map(String::as_str).collect();
        let more = if waiting.len() > shown.len() {
            format!(" and {} more", waiting.len() - shown.len())
        } else {
            String::new()
        };
        println!(
            "{}
  waiting for them: {}{more}
help: `rsfm run` and `rsfm run --dry-run` refuse these stages (exit 2) until the data is in place",
            dataset_roots::describe_missing(&missing).replacen("; nothing was run", "", 1),
            shown.join(", ")
        );
    }
}

/// The line a plan without its worker prints.
fn provisional_keys_note(worker: &Path) -> String {
    format!(
        "no rsfm-worker found at `{}`: the keys of worker stages (and of the stages after them) are provisional, none of them shown cached\nhelp: build it with `make worker`, or set RSFM_WORKER to its path, for the real keys",
        worker.display()
    )
}

/// The estimate as a text table with its totals and assumptions.
pub fn render_estimate(costs: &Estimate) -> String {
    let gib = |bytes: f64| bytes / estimate::GIB;
    let width = costs
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut text = format!(
        "\nestimate on {} ({:.0} TFLOP/s bf16 peak, {:.1} GiB) at {:.0}% MFU; GPU-hours are summed over a stage's GPUs, wall-clock hours are GPU-hours / GPUs\n",
        costs.gpu.name(),
        costs.gpu.peak_flops() / 1e12,
        costs.gpu_memory_gib,
        costs.mfu * 100.0
    );
    text += &format!(
        "{:<width$}  {:>8}  {:>10}  {:>5}  {:>4}  {:>9}  {:>7}  {:>9}  {:>9}  fits one GPU\n",
        "stage", "params", "FLOPs", "heads", "GPUs", "GPU-hours", "wall h", "mem GiB", "ckpt GiB"
    );
    for s in &costs.stages {
        let fits = match (s.fits, s.fits_checkpointed) {
            (true, _) => "yes",
            (false, true) => "with checkpointing",
            (false, false) => "no",
        };
        text += &format!(
            "{:<width$}  {:>8}  {:>10.3e}  {:>4.0}%  {:>4}  {:>9.1}  {:>7.1}  {:>9.1}  {:>9.1}  {fits}\n",
            s.stage,
            super::params::human(s.params as f64),
            s.flops,
            100.0 * s.head_flops / s.flops,
            s.gpus,
            s.gpu_hours,
            s.wall_hours,
            gib(s.memory.peak()),
            gib(s.memory.peak_checkpointed()),
        );
    }
    let too_big = costs.stages.iter().filter(|s| !s.fits).count();
    let never = costs.stages.iter().filter(|s| !s.fits_checkpointed).count();
    text += &format!(
        "total: {:.3e} training FLOPs, {:.0} GPU-hours on {} summed over GPUs, {:.0} wall-clock hours if the stages ran one after another ({} stages estimated; {} not: evaluation and commands)\n",
        costs.total_flops,
        costs.total_gpu_hours,
        costs.gpu.name(),
        costs.total_wall_hours,
        costs.stages.len(),
        costs.not_estimated.len()
    );
    text += &format!(
        "{too_big} stages do not fit one GPU without activation checkpointing; {never} do not fit even with it\n"
    );
    text += "model: FLOPs = 6 per multiply-accumulate (MAE ≈ 6 × params × tokens: encoder visible tokens, decoder all; fine-tuning: every layer of backbone, pyramid, neck and heads, `heads` their share, RoI head at roi_batch RoIs per image); memory per GPU in GiB = 16 B/param (fp32 weights, grads, AdamW) + bf16 backbone activations at batch/GPUs\n";
    text
}
