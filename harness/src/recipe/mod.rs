//! Recipes: TOML files that declare an experiment as stages, loaded into a checked, expanded
//! [`Recipe`].
//!
//! Loading reads the file and its `extends` bases (deep merge: tables merge, arrays replace,
//! later files win), strips provenance (`{ value = .., source = .. }`) into
//! [`Stage::sources`], expands the `[matrix]` into one stage per combination (`base@v1-v2`;
//! a stage's `matrix = ["model"]` list restricts it to some axes, and a stage it needs must
//! not vary over more axes than it does), fills in matrix variables and checks the other placeholders, checks every key and type
//! against the stage's kind ([`kinds`]), and orders stages so that each comes after those it
//! needs. Every error is a [`RecipeError`] naming `file:line:col` and the fix.
//!
//! Paths: dataset roots resolve against the folder of the file that set them; `argv` and
//! `deps` stay as written and resolve against [`Recipe::dir`] when run.

mod dataset;
mod document;
mod error;
mod experiment;
mod extends;
mod graph;
pub mod kinds;
mod location;
mod matrix;
mod origins;
mod overrides;
mod provenance;
mod read;
mod resources;
pub mod slurm;
mod stage;
mod template;

pub use dataset::DatasetDef;
pub use error::{ErrorKind, RecipeError, RecipeErrors};
pub use experiment::Experiment;
pub use kinds::{CommandParams, ParamType, StageKind};
pub use location::Location;
pub(crate) use origins::quote_key;
pub use origins::{toml_origins, Origin};
pub use overrides::{is_cli_origin, Override};
pub use provenance::{is_valid_source, SOURCE_PREFIXES};
pub use resources::Resources;
pub use rsfm_model::params::Field;
pub use slurm::SlurmTable;
pub use stage::{Stage, COMMON_KEYS};
pub use template::{substitute, substitute_json};

use graph::GraphNode;
use indexmap::IndexMap;
use read::Table;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A loaded recipe: merged, expanded over its matrix and checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    /// The recipe file, absolute.
    pub path: PathBuf,
    /// Its folder.
    pub dir: PathBuf,
    /// `[experiment]`.
    pub experiment: Experiment,
    /// Datasets by name (expanded per combination where their root uses the matrix).
    pub datasets: BTreeMap<String, DatasetDef>,
    /// Stages, expanded: file order then matrix order, each after the stages it needs.
    pub stages: Vec<Stage>,
    /// Every leaf value of the merged recipe and the file position it came from.
    pub origins: Vec<Origin>,
    /// `[slurm]`: settings of the Slurm backend, if the recipe has them.
    pub slurm: Option<SlurmTable>,
}

/// Keys allowed at the top level of a recipe.
const TOP_KEYS: &[&str] = &[
    "extends",
    "experiment",
    "matrix",
    "dataset",
    "stage",
    "slurm",
];

/// Loads, merges, expands and checks the recipe at `path`.
pub fn load(path: &Path) -> Result<Recipe, RecipeErrors> {
    load_with(path, &[])
}

/// [`load`] with `--set` overrides applied to the merged recipe before it is checked.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Recipe, RecipeErrors> {
    let (recipe, errors) = load_partial(path, overrides)?;
    errors.or_value(recipe)
}

/// [`load_with`] that goes on past the errors of single stages: the recipe without the stages
/// that have errors (and those that need them), and every error found. Fails outright when the
/// recipe's structure is broken (syntax, top-level tables, the `needs` graph).
pub fn load_partial(
    path: &Path,
    overrides: &[Override],
) -> Result<(Recipe, RecipeErrors), RecipeErrors> {
    let path = path.canonicalize().map_err(|error| RecipeError {
        kind: ErrorKind::Io,
        location: None,
        message: format!("cannot read recipe `{}`: {error}", path.display()),
        help: Some("check the path of the recipe file".to_string()),
    })?;
    let mut root = extends::load_merged(&path)?;
    overrides::apply(&mut root, overrides)?;
    let origins = origins::collect(&root)?;
    let top = Table::new(&root, "")?;
    let mut errors = RecipeErrors::default();
    errors.keep(top.check_keys(TOP_KEYS));
    let experiment = errors.keep(experiment::parse(&top));
    let slurm = errors.keep(top.get("slurm").map(slurm::parse).transpose());
    let axes = matrix::parse(top.get("matrix")).map_err(|error| with(&errors, error))?;
    let datasets =
        dataset::parse(top.get("dataset"), &axes).map_err(|error| with(&errors, error))?;
    let (experiment, slurm) = match (experiment, slurm) {
        (Some(experiment), Some(slurm)) => (experiment, slurm),
        _ => return Err(errors),
    };
    let mut templates = Vec::new();
    let mut failed: HashSet<String> = HashSet::new();
    for parsed in stage::parse_templates(top.get("stage"), &axes, &datasets)? {
        match parsed {
            Ok((template, stage_errors)) => {
                if !stage_errors.is_empty() {
                    failed.insert(template.name.clone());
                    errors.extend(stage_errors);
                }
                templates.push(template);
            }
            Err((name, stage_errors)) => {
                failed.insert(name);
                errors.extend(stage_errors);
            }
        }
    }
    let unreadable = unreadable(&failed, &templates);
    let templates = without_unreadable_needs(templates, &unreadable);
    let graph_nodes: Vec<GraphNode<'_>> = templates
        .iter()
        .map(|template| GraphNode {
            name: &template.name,
            needs: &template.needs,
        })
        .collect();
    let order = graph::order(&graph_nodes).map_err(|error| with(&errors, error))?;
    stage::check_needed_axes(&templates).map_err(|error| with(&errors, error))?;
    let stage_axes: IndexMap<String, Vec<String>> = templates
        .iter()
        .map(|template| (template.name.clone(), template.axes.clone()))
        .collect();
    let context = stage::Expansion {
        axes: &axes,
        stage_axes: &stage_axes,
        datasets: &datasets,
        experiment_seed: experiment.seed,
    };
    let limit = matrix::max_stages();
    let total = order.iter().fold(0u64, |total, &index| {
        total.saturating_add(matrix::combination_count(&axes, &templates[index].axes).0)
    });
    if total > limit {
        let (index, (count, described)) = order
            .iter()
            .map(|&index| {
                (
                    index,
                    matrix::combination_count(&axes, &templates[index].axes),
                )
            })
            .max_by_key(|(_, (count, _))| *count)
            .expect("a recipe over the limit has stages");
        return Err(with(
            &errors,
            RecipeError::at(
                ErrorKind::InvalidValue,
                templates[index].location(),
                format!(
                    "the recipe expands to {total} stages, over the limit of {limit}: stage `{}` alone is {count} (axes {described})",
                    templates[index].name
                ),
            )
            .help("use fewer matrix values or `matrix = [...]` on the stage to select fewer axes (or raise RSFM_MAX_STAGES)"),
        ));
    }
    let mut stages: Vec<Stage> = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for index in order {
        let template = &templates[index];
        if template.needs.iter().any(|(need, _)| failed.contains(need)) {
            failed.insert(template.name.clone());
        }
        for combination in matrix::combinations(&axes, &template.axes) {
            let stage = match stage::expand(template, &combination, &context) {
                Ok(stage) => stage,
                Err(stage_errors) => {
                    failed.insert(template.name.clone());
                    errors.extend(stage_errors);
                    continue;
                }
            };
            if let Some(first) = seen.insert(stage.name.clone(), stage.location.clone()) {
                errors.push(RecipeError::at(
                    ErrorKind::BadName,
                    &stage.location,
                    format!(
                        "stage name `{}` is produced twice (also by the stage at {first})",
                        stage.name
                    ),
                )
                .help("matrix values joined by `-` collide: avoid `-` in matrix values or rename the stage"));
                continue;
            }
            stages.push(stage);
        }
    }
    stages.retain(|stage| !failed.contains(&stage.base));
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let recipe = Recipe {
        path,
        dir,
        experiment,
        datasets: datasets.defs,
        stages,
        origins,
        slurm,
    };
    Ok((recipe, errors))
}

/// `errors` and then `error`: the errors found before a fatal one are reported with it.
fn with(errors: &RecipeErrors, error: RecipeError) -> RecipeErrors {
    let mut all = errors.clone();
    all.push(error);
    all
}

/// The stages in `failed` that have no template (their table could not be read at all).
fn unreadable(failed: &HashSet<String>, templates: &[stage::StageTemplate<'_>]) -> HashSet<String> {
    failed
        .iter()
        .filter(|name| !templates.iter().any(|template| &template.name == *name))
        .cloned()
        .collect()
}

/// The templates without those that need an `unreadable` stage, directly or through others:
/// their errors are those of the stages they need.
fn without_unreadable_needs<'a>(
    mut templates: Vec<stage::StageTemplate<'a>>,
    unreadable: &HashSet<String>,
) -> Vec<stage::StageTemplate<'a>> {
    let mut blocked = unreadable.clone();
    loop {
        let before = templates.len();
        templates.retain(|template| {
            let needs_blocked = template
                .needs
                .iter()
                .any(|(need, _)| blocked.contains(need));
            if needs_blocked {
                blocked.insert(template.name.clone());
            }
            !needs_blocked
        });
        if templates.len() == before {
            return templates;
        }
    }
}
