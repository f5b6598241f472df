//! `rsfm cache ls|verify|gc`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{RecipeInputs, Session};
use crate::cache::Cache;

/// Subcommands of `rsfm cache`.
#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List cache entries.
    Ls,
    /// Re-hash every entry against its manifest.
    Verify,
    /// Remove entries no given recipe reaches (and invalid ones); their result rows become
    /// `gone`.
    Gc {
        /// Recipes whose stages to keep.
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs `rsfm cache`.
pub async fn run(command: CacheCommand, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Ls => {
            let entries = Cache::open(results)?.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in &entries {
                    println!(
                        "{}  {:<28} {:>6} files {:>12} bytes  {}",
                        crate::query::short_key(&e.key),
                        e.stage,
                        e.files,
                        e.bytes,
                        e.created_at
                    );
                }
                println!("{} entries", entries.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Verify => {
            let problems = Cache::open(results)?.verify()?;
            if json {
                let rows: Vec<_> = problems
                    .iter()
                    .map(|(k, p)| serde_json::json!({"key": k, "problem": p}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if problems.is_empty() {
                println!("all cache entries match their manifests");
            } else {
                for (key, problem) in &problems {
                    println!("{key}: {problem}");
                }
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        CacheCommand::Gc { recipes, dry_run } => {
            let session = Session::open(
                &RecipeInputs {
                    paths: &recipes,
                    ..Default::default()
                },
                results,
            )
            .await?;
            // Exclusive against every live run's shared hold: an entry a run just made or still
            // needs is never collected under it.
            let _no_run = match crate::lock::try_lock(
                &session.results_dir,
                crate::lock::RESULTS_IN_USE,
            )? {
                crate::lock::TryLock::Acquired(lock) => lock,
                crate::lock::TryLock::Held(_) => anyhow::bail!(
                    "an `rsfm run` is using {}: `cache gc` removes nothing while a run may need an entry; run it again when the run has ended",
                    session.results_dir.display()
                ),
            };
            let plan = session.plan().await?;
            let keep: HashSet<String> = plan.stages.iter().map(|s| s.key.key.clone()).collect();
            let removed = if dry_run {
                session
                    .cache
                    .list()?
                    .into_iter()
                    .map(|e| e.key)
                    .filter(|k| !keep.contains(k))
                    .collect()
            } else {
                let removed = session.cache.gc(&keep)?;
                session.store.mark_removed(&removed).await?;
                removed
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "removed": removed, "dry_run": dry_run })
                );
            } else {
                for key in &removed {
                    println!("{} {key}", if dry_run { "would remove" } else { "removed" });
                }
                println!(
                    "{} entries {}",
                    removed.len(),
                    if dry_run { "to remove" } else { "removed" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
