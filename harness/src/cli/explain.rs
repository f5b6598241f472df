//! `rsfm explain RECIPE [STAGE] [--json]`: why stages are pending, as the key fields that changed
//! since each stage's last cached run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::session::{RecipeInputs, Session};
use super::BadInput;
use crate::cache::{Cache, KEY_FILE};
use crate::plan::key::{FieldChange, KeyManifest};
use crate::plan::{Plan, PlannedStage};
use crate::recipe::{self, Override, Recipe};
use crate::store::{StageFilter, StageStatus, Store};

/// Arguments of `rsfm explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Recipe file.
    recipe: PathBuf,
    /// Only this stage (full or base name).
    stage: Option<String>,
    /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable; VALUE is TOML, checked like
    /// a value in the recipe; its origin reads `cli`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
}

/// One stage's explanation.
#[derive(Debug, Serialize)]
struct Explanation {
    name: String,
    /// `cached`, `pending` (changed since a cached run) or `new` (never cached).
    status: &'static str,
    previous_key: Option<String>,
    changes: Vec<FieldChange>,
    /// For `needs.X` changes: the fields that changed upstream.
    upstream: Vec<String>,
    /// Values of this stage set with `--set` (origin `cli`): `key = value`.
    cli: Vec<String>,
}

/// Explains the recipe's stages.
pub async fn run(args: ExplainArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let session = Session::open_read_only(
        &RecipeInputs {
            paths: std::slice::from_ref(&args.recipe),
            overrides: &args.set,
            data: &[],
        },
        results,
    )
    .await?;
    let plan = session.plan().await?;
    let selected: Vec<usize> = (0..plan.stages.len())
        .filter(|&i| {
            let stage = &plan.stages[i].stage;
            args.stage
                .as_ref()
                .is_none_or(|s| s == &stage.name || s == &stage.base)
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = plan.stages.iter().map(|s| s.stage.name.as_str()).collect();
        return Err(BadInput::msg(format!(
            "{}: no stage named `{}` (stages: {})",
            args.recipe.display(),
            args.stage.unwrap_or_default(),
            names.join(", ")
        )));
    }
    let mut explanations = Vec::new();
    for i in selected {
        let mut explanation = explain(&plan, i, &session.store, &session.cache).await?;
        explanation.cli = cli_values(&session.recipes[0], &plan.stages[i].stage.base);
        explanations.push(explanation);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "stages": explanations }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for e in &explanations {
        for value in &e.cli {
            println!("{}: {value}  (origin: cli)", e.name);
        }
        match e.status {
            "cached" => println!("{}: cached", e.name),
            "new" => println!("{}: pending, never ran with a cached result", e.name),
            _ => {
                println!(
                    "{}: pending; changed since {}:",
                    e.name,
                    crate::query::short_key(e.previous_key.as_deref().unwrap_or(""))
                );
                for c in &e.changes {
                    let old = c
                        .old
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "(absent)".into());
                    let new = c
                        .new
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "(absent)".into());
                    if c.field.starts_with("needs.") {
                        println!(
                            "  {}: upstream stage changed ({})",
                            c.field,
                            e.upstream.join(", ")
                        );
                    } else {
                        println!("  {}: {old} -> {new}", c.field);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn explain(
    plan: &Plan,
    index: usize,
    store: &Store,
    cache: &Cache,
) -> anyhow::Result<Explanation> {
    let planned = &plan.stages[index];
    let name = planned.stage.name.clone();
    if planned.cached {
        return Ok(Explanation {
            name,
            status: "cached",
            previous_key: None,
            changes: vec![],
            upstream: vec![],
            cli: vec![],
        });
    }
    let Some(previous) = previous_manifest(planned, store, cache).await? else {
        return Ok(Explanation {
            name,
            status: "new",
            previous_key: None,
            changes: vec![],
            upstream: vec![],
            cli: vec![],
        });
    };
    let changes = planned.key.changes_since(&previous);
    let mut upstream = Vec::new();
    for change in changes.iter().filter(|c| c.field.starts_with("needs.")) {
        for &need in &planned.needs {
            let needed = &plan.stages[need];
            if format!("needs.{}", needed.stage.base) == change.field {
                if let Some(before) = previous_manifest(needed, store, cache).await? {
                    let fields = needed
                        .key
                        .changes_since(&before)
                        .into_iter()
                        .map(|c| c.field);
                    upstream.extend(fields.map(|f| format!("{}: {f}", needed.stage.name)));
                }
            }
        }
    }
    Ok(Explanation {
        name,
        status: "pending",
        previous_key: Some(previous.key.clone()),
        changes,
        upstream,
        cli: vec![],
    })
}

/// The values of stage `base` that `--set` gave (their origin is the command line).
fn cli_values(recipe: &Recipe, base: &str) -> Vec<String> {
    let prefix = format!("stage.{base}.");
    recipe
        .origins
        .iter()
        .filter(|o| o.key.starts_with(&prefix) && recipe::is_cli_origin(&o.location))
        .map(|o| format!("{} = {}", o.key, o.value))
        .collect()
}

/// The key manifest of the stage's latest cached run under another key.
async fn previous_manifest(
    planned: &PlannedStage,
    store: &Store,
    cache: &Cache,
) -> anyhow::Result<Option<KeyManifest>> {
    let filter = StageFilter {
        statuses: vec![StageStatus::Succeeded, StageStatus::Cached],
        experiment: Some(planned.experiment.clone()),
        ..StageFilter::default()
    };
    let mut rows: Vec<_> = store
        .stages(&filter)
        .await?
        .into_iter()
        .filter(|r| r.name == planned.stage.name && r.key != planned.key.key)
        .collect();
    rows.sort_by(|a, b| b.finished_at.cmp(&a.finished_at));
    for row in rows {
        if let Some(entry) = cache.lookup(&row.key) {
            let bytes = fs_err::read(entry.dir.join(KEY_FILE))?;
            return Ok(Some(serde_json::from_slice(&bytes)?));
        }
    }
    Ok(None)
}
