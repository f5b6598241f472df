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
pub use error::{ErrorKind, RecipeError};
pub use experiment::Experiment;
pub use kinds::{CommandParams, ParamType, StageKind};
pub use location::Location;
pub use origins::Origin;
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
use std::collections::{BTreeMap, HashMap};
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
pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
    load_with(path, &[])
}

/// [`load`] with `--set` overrides applied to the merged recipe before it is checked.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Recipe, RecipeError> {
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
    top.check_keys(TOP_KEYS)?;
    let experiment = experiment::parse(&top)?;
    let slurm = top.get("slurm").map(slurm::parse).transpose()?;
    let axes = matrix::parse(top.get("matrix"))?;
    let datasets = dataset::parse(top.get("dataset"), &axes)?;
    let templates = stage::parse_templates(top.get("stage"), &axes, &datasets)?;
    let graph_nodes: Vec<GraphNode<'_>> = templates
        .iter()
        .map(|template| GraphNode {
            name: &template.name,
            needs: &template.needs,
        })
        .collect();
    let order = graph::order(&graph_nodes)?;
    stage::check_needed_axes(&templates)?;
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
    let mut stages = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for index in order {
        let template = &templates[index];
        for combination in matrix::combinations(&axes, &template.axes) {
            let stage = stage::expand(template, &combination, &context)?;
            if let Some(first) = seen.insert(stage.name.clone(), stage.location.clone()) {
                return Err(RecipeError::at(
                    ErrorKind::BadName,
                    &stage.location,
                    format!(
                        "stage name `{}` is produced twice (also by the stage at {first})",
                        stage.name
                    ),
                )
                .help("matrix values joined by `-` collide: avoid `-` in matrix values or rename the stage"));
            }
            stages.push(stage);
        }
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(Recipe {
        path,
        dir,
        experiment,
        datasets: datasets.defs,
        stages,
        origins,
        slurm,
    })
}
