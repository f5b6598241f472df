//! `rsfm plan RECIPE... [--json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::Session;

/// Arguments of `rsfm plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Recipe files.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
}

/// Prints the plan.
pub async fn run(args: PlanArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let session = Session::open(&args.recipes, results).await?;
    let plan = session.plan().await?;
    let entries = plan.entries();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "stages": entries }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:<7}  {:<12}  needs", "stage", "status", "key");
    for entry in &entries {
        println!(
            "{:<width$}  {:<7}  {:<12}  {}",
            entry.name,
            entry.status,
            &entry.key[..12],
            entry.needs.join(", "),
            width = width
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
