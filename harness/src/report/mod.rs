//! Reports (`rsfm report`): the paper's tables with reproduced numbers beside the reported
//! ones, as Markdown, LaTeX, CSV and an offline `index.html` with SVG plots.
//!
//! Cells come from the plan's **current** keys only: the recipes are planned, each `evaluate`
//! stage is traced to its model, dataset, fraction and seed ([`lineage`]), and the final metrics
//! of exactly those keys are read from the store ([`measured`]); a superseded run never fills a
//! cell. Reported numbers and tolerances come from `reported.toml`, read at report time; the
//! tables and labels from `tables/tables.toml`, rendered by the minijinja templates beside it.
//! A table no stage of the recipes can fill (a DOTA table of a LoveDA-only study) is left out
//! of every format, and named once in `index.html`.
//! A report of recipes outside the paper folder (e.g. `recipes/smoke`) is smoke scale: a
//! banner says so and no cell gets a Δ or a verdict against the paper.

mod cells;
mod claims;
mod lineage;
mod measured;
mod models;
mod plots;
mod render;
mod reported_file;
mod spec;
mod svg;
mod tables;

pub use lineage::is_assumption;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use render::Format;
pub use reported_file::{ReportedFile, ReportedValue};

use crate::error::BadInput;
use crate::plan::Plan;
use crate::recipe::Recipe;
use crate::store::Store;

/// File of reported values in the paper folder.
pub const REPORTED_FILE: &str = "reported.toml";
/// The paper's claims, beside the reported values (optional).
pub const CLAIMS_FILE: &str = "claims.toml";
/// Folder of the table list and templates in the paper folder.
pub const TABLES_DIR: &str = "tables";
/// The table list in [`TABLES_DIR`].
const TABLES_FILE: &str = "tables.toml";

/// What to render and where.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The folder holding `reported.toml` and `tables/`.
    pub paper_dir: PathBuf,
    /// One table by name, or all.
    pub table: Option<String>,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// Output folder.
    pub out: PathBuf,
}

/// The folder with `reported.toml` and `tables/tables.toml`: the nearest one at or above the
/// first recipe's folder (itself, or a `paper/` child of an ancestor), else above `cwd`.
pub fn locate_paper_dir(recipes: &[Recipe], cwd: &Path) -> anyhow::Result<PathBuf> {
    let starts = recipes
        .first()
        .map(|r| r.dir.clone())
        .into_iter()
        .chain([cwd.to_path_buf()]);
    for start in starts {
        for dir in start.ancestors() {
            for candidate in [
                dir.to_path_buf(),
                dir.join("paper"),
                dir.join("recipes/paper"),
            ] {
                if is_paper_dir(&candidate) {
                    return Ok(candidate);
                }
            }
        }
    }
    Err(BadInput::msg(format!(
        "no {REPORTED_FILE} with {TABLES_DIR}/{TABLES_FILE} found above the recipes or {}: pass --paper DIR (e.g. recipes/paper)",
        cwd.display()
    )))
}

fn is_paper_dir(dir: &Path) -> bool {
    dir.join(REPORTED_FILE).is_file() && dir.join(TABLES_DIR).join(TABLES_FILE).is_file()
}

/// Renders the report of `plan` (planned from `recipes`) with the metrics in `store`; stores
/// the reported values in its `reported` table; returns the files written.
pub async fn generate(
    recipes: &[Recipe],
    plan: &Plan,
    store: &Store,
    options: &ReportOptions,
) -> anyhow::Result<Vec<PathBuf>> {
    let reported =
        ReportedFile::load(&options.paper_dir.join(REPORTED_FILE)).map_err(BadInput::wrap)?;
    store.replace_reported(&reported.store_rows()).await?;
    let claims =
        claims::ClaimsFile::load(&options.paper_dir.join(CLAIMS_FILE)).map_err(BadInput::wrap)?;
    let tables_dir = options.paper_dir.join(TABLES_DIR);
    let specs = spec::TableSpecs::load(&tables_dir.join(TABLES_FILE)).map_err(BadInput::wrap)?;
    let selected: Vec<&spec::TableSpec> = specs
        .tables
        .iter()
        .filter(|t| {
            options
                .table
                .as_deref()
                .is_none_or(|name| name == "all" || name == t.name)
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = specs.tables.iter().map(|t| t.name.as_str()).collect();
        return Err(BadInput::msg(format!(
            "--table {}: no such table (tables: {}, or all)",
            options.table.as_deref().unwrap_or(""),
            names.join(", ")
        )));
    }
    let mut observations = lineage::observations(plan);
    measured::attach(store, &mut observations).await?;
    let mut rescores = lineage::rescores(plan);
    measured::attach_rescores(store, &mut rescores).await?;
    let models = models::models(plan)?;
    let gpu_hours =
        crate::plan::estimate::gpu_hours_by_stage(plan, crate::plan::estimate::Gpu::H100);
    let paper_dir = options
        .paper_dir
        .canonicalize()
        .unwrap_or_else(|_| options.paper_dir.clone());
    let paper_scale = !recipes.is_empty() && recipes.iter().all(|r| r.path.starts_with(&paper_dir));
    let inputs = tables::Inputs {
        specs: &specs,
        reported: &reported,
        observations: &observations,
        models: &models,
        claims: &claims,
        rescores: &rescores,
        gpu_hours: &gpu_hours,
        verdicts: paper_scale,
    };
    let (shown, left_out): (Vec<&spec::TableSpec>, Vec<&spec::TableSpec>) = selected
        .iter()
        .partition(|spec| tables::fillable(spec, &inputs));
    if let (Some(name), [spec]) = (options.table.as_deref(), left_out.as_slice()) {
        if name != "all" {
            return Err(BadInput::msg(format!(
                "--table {name}: no stage of these recipes can fill `{}` (no `evaluate` stage scores its datasets, or no stage names a model)\nhelp: add the recipes that score them, or leave out --table",
                spec.title
            )));
        }
    }
    let all_plots = plots::plots(&inputs);
    let view = render::ReportView {
        banner: if paper_scale {
            String::new()
        } else {
            "Smoke scale: these recipes are not the paper's study (recipes outside the paper folder); reported values are shown for orientation only, with no Δ and no verdict.".to_string()
        },
        recipes: recipe_refs(recipes, &std::env::current_dir()?)?,
        code: {
            let mut code: Vec<String> = observations
                .iter()
                .map(|o| o.code.clone())
                .filter(|c| !c.is_empty())
                .collect();
            code.sort();
            code.dedup();
            code
        },
        evaluated: observations.iter().filter(|o| o.metrics.is_some()).count(),
        evaluations: observations.len(),
        tables: shown
            .iter()
            .map(|spec| tables::build(spec, &inputs))
            .collect(),
        left_out: left_out
            .iter()
            .map(|spec| render::LeftOut {
                name: spec.name.clone(),
                title: spec.title.clone(),
            })
            .collect(),
        plots: render::plot_views(&all_plots),
    };
    render::write(&view, &tables_dir, &options.formats, &options.out)
}

/// File (relative to its project, [`project_path`]), content hash and description of each
/// recipe.
fn recipe_refs(recipes: &[Recipe], cwd: &Path) -> anyhow::Result<Vec<render::RecipeRef>> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    recipes
        .iter()
        .map(|r| {
            let hash = crate::fingerprint::sha256_file(&r.path)
                .with_context(|| format!("hashing {}", r.path.display()))?;
            Ok(render::RecipeRef {
                file: project_path(&r.path, &cwd),
                sha256: hash[..12].to_string(),
                experiment: r.experiment.name.clone(),
                description: r.experiment.description.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// `path` as a report shows it, with no folder of this machine: relative to its project root,
/// the parent of the nearest folder above it named `recipes` (`recipes/smoke/study.toml`); a
/// file outside any `recipes/` folder relative to the current folder `cwd` when below it, else
/// its name alone.
fn project_path(path: &Path, cwd: &Path) -> String {
    let slashed = |relative: &Path| {
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    };
    let folder = path.parent().unwrap_or(path);
    let project = folder
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "recipes"))
        .and_then(Path::parent);
    for root in project.into_iter().chain([cwd]) {
        if let Ok(relative) = path.strip_prefix(root) {
            return slashed(relative);
        }
    }
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_paths_are_relative_to_the_project() {
        let cwd = Path::new("/home/someone/elsewhere");
        assert_eq!(
            project_path(Path::new("/work/main/recipes/smoke/study.toml"), cwd),
            "recipes/smoke/study.toml"
        );
        // The nearest `recipes` folder above the file is the project's.
        assert_eq!(
            project_path(Path::new("/srv/recipes/lab/recipes/paper/a.toml"), cwd),
            "recipes/paper/a.toml"
        );
        assert_eq!(
            project_path(Path::new("/home/someone/elsewhere/study/b.toml"), cwd),
            "study/b.toml"
        );
        assert_eq!(project_path(Path::new("/tmp/x/c.toml"), cwd), "c.toml");
    }
}
