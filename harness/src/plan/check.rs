//! Plan-time checks of a loaded recipe that need no results directory: each worker stage's
//! parameters as the worker will read them, and each `deps` file. They run before anything is
//! opened, and report every error, each at the key it is about.

use std::path::Path;

use super::worker_params::{translate, Needed};
use crate::recipe::{ErrorKind, Recipe, RecipeError, RecipeErrors, Stage};

/// Every error the stages of `recipe` would meet while being planned.
pub fn recipe_errors(recipe: &Recipe) -> RecipeErrors {
    let mut errors = RecipeErrors::default();
    for stage in &recipe.stages {
        let needed: Vec<Needed> = stage
            .needs
            .iter()
            .filter_map(|name| recipe.stages.iter().find(|other| &other.name == name))
            .map(|other| Needed {
                base: &other.base,
                kind: other.kind,
            })
            .collect();
        errors.keep(translate(recipe, stage, &needed));
        for dep in stage_deps(stage) {
            if let Err(error) = fs_err::File::open(recipe.dir.join(&dep)) {
                errors.push(missing_dep(stage, &recipe.dir, &dep, &error.into()));
            }
        }
    }
    errors
}

/// The `deps` files of a command stage, relative to the recipe folder.
pub fn stage_deps(stage: &Stage) -> Vec<String> {
    stage
        .params
        .get("deps")
        .and_then(|d| d.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The error for a `deps` entry of `stage` that cannot be read.
pub fn missing_dep(stage: &Stage, dir: &Path, dep: &str, error: &anyhow::Error) -> RecipeError {
    RecipeError::at(
        ErrorKind::InvalidValue,
        stage.location_of("deps"),
        format!(
            "stage `{}` lists `{dep}` in `deps`, which cannot be read: {error:#}",
            stage.name
        ),
    )
    .help(format!(
        "deps are files whose content enters the key, relative to the recipe's folder ({}): create it or fix the path",
        dir.display()
    ))
}
