//! `rsfm audit RECIPE... [--sample N] [--rtol X] [--atol X] [--json]`: rerun cached stages in a
//! scratch dir and say, per stage, whether they are identical, within tolerance, or not
//! reproducible. Exit 0 when none is not reproducible, else 1. The cache and database are only
//! read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{RecipeInputs, Session};
use crate::audit::{audit_stage, pick, Rerun, Tolerance, Verdict};
use crate::executor::command_line::find_worker;
use crate::executor::Executor;

/// Arguments of `rsfm audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Recipe files or folders.
    #[arg(required = true)]
    recipes: Vec<PathBuf>,
    /// Audit this many cached stages (a stable sample: the smallest keys); default all.
    #[arg(long)]
    sample: Option<usize>,
    /// Relative tolerance of the metric comparison.
    #[arg(long, default_value_t = 1e-6)]
    rtol: f64,
    /// Absolute tolerance of the metric comparison.
    #[arg(long, default_value_t = 1e-9)]
    atol: f64,
}

/// Runs `rsfm audit`.
pub async fn run(args: AuditArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let session = Session::open_read_only(
        &RecipeInputs {
            paths: &args.recipes,
            ..Default::default()
        },
        results,
    )
    .await?;
    let plan = session.plan().await?;
    let tolerance = Tolerance {
        rtol: args.rtol,
        atol: args.atol,
    };
    let worker = find_worker();
    let rerun = Rerun {
        cache: &session.cache,
        worker: &worker,
        executor: &Executor::Local,
    };
    let mut audits = Vec::new();
    for i in pick(&plan, args.sample) {
        if !json {
            eprintln!("auditing {}", plan.stages[i].display_name());
        }
        audits.push(audit_stage(&rerun, &plan, i, tolerance).await?);
    }
    let count = |v: Verdict| audits.iter().filter(|a| a.verdict == v).count();
    if json {
        let summary = serde_json::json!({
            "stages": audits,
            "identical": count(Verdict::Identical),
            "within_tolerance": count(Verdict::WithinTolerance),
            "not_reproducible": count(Verdict::NotReproducible),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for audit in &audits {
            println!("{:<17} {}", audit.verdict.as_str(), audit.stage);
            for difference in &audit.differences {
                println!("    {difference}");
            }
        }
        println!(
            "{} stages audited: {} identical, {} within tolerance, {} not reproducible",
            audits.len(),
            count(Verdict::Identical),
            count(Verdict::WithinTolerance),
            count(Verdict::NotReproducible)
        );
    }
    Ok(if count(Verdict::NotReproducible) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
