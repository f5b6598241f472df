//! `rsfm plan RECIPE... [--json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::Session;
use crate::recipe::Override;

/// Arguments of `rsfm plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Recipe files.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
    /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable; VALUE is TOML, checked like
    /// a value in the recipe; its origin reads `cli`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
}

/// Prints the plan.
pub async fn run(args: PlanArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let session = Session::open_read_only(&args.recipes, &args.set, results).await?;
    let plan = session.plan().await?;
    let entries = plan.entries();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "stages": entries }))?
        );
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
    println!(
        "{} stages: {cached} cached, {} pending",
        entries.len(),
        entries.len() - cached
    );
    Ok(ExitCode::SUCCESS)
}
