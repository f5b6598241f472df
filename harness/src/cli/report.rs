//! `rsfm report [RECIPE...] [--table NAME|all] [--format md|tex|html|csv] [--out DIR] [--paper DIR]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{RecipeInputs, Session};
use crate::report::{self, Format, ReportOptions};

/// Arguments of `rsfm report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Recipe files or folders whose current results fill the tables.
    #[arg(default_value = "recipes/paper")]
    recipes: Vec<PathBuf>,
    /// One table by name (as in tables/tables.toml), or `all`.
    #[arg(long, default_value = "all")]
    table: String,
    /// Formats to write (repeatable; default: all four).
    #[arg(long, value_enum)]
    format: Vec<Format>,
    /// Output folder (default: <results>/reports).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder with reported.toml and tables/ (default: recipes/paper, found from the recipes'
    /// folder or the current folder upwards).
    #[arg(long)]
    paper: Option<PathBuf>,
}

/// Renders the report and prints the files written (JSON: `{"files": [...]}`).
pub async fn run(args: ReportArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out {
        crate::results_dir::check_output_folder(out, "--out")?;
    }
    let session = Session::open(
        &RecipeInputs {
            paths: &args.recipes,
            ..Default::default()
        },
        results,
    )
    .await?;
    let plan = session.plan().await?;
    let paper_dir = match args.paper {
        Some(dir) => dir,
        None => report::locate_paper_dir(&session.recipes, &std::env::current_dir()?)?,
    };
    let options = ReportOptions {
        paper_dir,
        table: Some(args.table),
        formats: if args.format.is_empty() {
            Format::ALL.to_vec()
        } else {
            args.format
        },
        out: args
            .out
            .unwrap_or_else(|| session.results_dir.join("reports")),
    };
    let files = report::generate(&session.recipes, &plan, &session.store, &options).await?;
    if json {
        println!("{}", serde_json::json!({ "files": files }));
    } else {
        for file in &files {
            println!("{}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
