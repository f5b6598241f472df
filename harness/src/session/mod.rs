//! What `plan`, `run` and `explain` share: loading recipes and opening the results directory.

pub mod recipe_paths;

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::dataset_roots::DataRoots;
use crate::error::BadInput;
use crate::plan::check;
use crate::plan::Plan;
use crate::recipe::{self, Override, Recipe, RecipeErrors};
use crate::store::Store;

/// The results directory opened for planning or running.
pub struct Session {
    /// Loaded recipes, in command-line order.
    pub recipes: Vec<Recipe>,
    /// The results directory.
    pub results_dir: PathBuf,
    /// The store (`rsfm.db`), migrated.
    pub store: Store,
    /// The cache.
    pub cache: Cache,
}

impl Session {
    /// Loads `recipe_paths` (all of them, before touching the results dir) and opens
    /// `results_dir`, applying migrations under the results dir's `run` lock.
    pub async fn open(inputs: &RecipeInputs<'_>, results_dir: &Path) -> anyhow::Result<Session> {
        let recipes = inputs.load()?;
        let (results_dir, store) = open_store(results_dir).await?;
        Session::with_cache(recipes, results_dir, store)
    }

    /// Loads `recipe_paths` and opens `results_dir` for a command that only reads: the database
    /// read-only (or empty in memory where none exists yet), so neither `rsfm.db` nor its mtime
    /// changes.
    pub async fn open_read_only(
        inputs: &RecipeInputs<'_>,
        results_dir: &Path,
    ) -> anyhow::Result<Session> {
        let recipes = inputs.load()?;
        let results_dir = std::path::absolute(results_dir)?;
        let store = Store::open_for_reading(&results_dir.join("rsfm.db")).await?;
        Session::with_cache(recipes, results_dir, store)
    }

    /// The session of `recipes` on `results_dir` with `store` open, and its cache.
    fn with_cache(
        recipes: Vec<Recipe>,
        results_dir: PathBuf,
        store: Store,
    ) -> anyhow::Result<Session> {
        let cache = Cache::open(&results_dir)?;
        Ok(Session {
            recipes,
            results_dir,
            store,
            cache,
        })
    }

    /// The plan of the loaded recipes.
    pub async fn plan(&self) -> anyhow::Result<Plan> {
        Plan::build(&self.recipes, &self.store, &self.cache).await
    }
}

/// Claims `results_dir` (a folder holding other files is refused before anything is written
/// there) and opens its store for writing, migrations applied under the `run` lock; returns the
/// folder's canonical path and the store.
pub async fn open_store(results_dir: &Path) -> anyhow::Result<(PathBuf, Store)> {
    crate::results_dir::claim(results_dir)?;
    let results_dir = results_dir.canonicalize()?;
    let store = {
        let _lock = crate::lock::lock(&results_dir, "run", |_| {}).await?;
        Store::open(&results_dir.join("rsfm.db")).await?
    };
    Ok((results_dir, store))
}

/// The store of `results_dir`, read-only, and the stage keys `recipes` resolve to now (`None`
/// without recipes: every current stage). Exit 2 when there are no results yet.
pub async fn read_store_for(
    recipes: &[PathBuf],
    results_dir: &Path,
) -> anyhow::Result<(Store, Option<Vec<String>>)> {
    let db = results_dir.join("rsfm.db");
    if recipes.is_empty() {
        let store = Store::open_read_only(&db).await.map_err(BadInput::wrap)?;
        return Ok((store, None));
    }
    if !db.is_file() {
        return Err(BadInput::msg(format!(
            "no results yet: {} does not exist (run `rsfm run` first)",
            db.display()
        )));
    }
    let session = Session::open_read_only(
        &RecipeInputs {
            paths: recipes,
            ..Default::default()
        },
        results_dir,
    )
    .await?;
    let plan = session.plan().await?;
    let keys = plan.stages.iter().map(|s| s.key.key.clone()).collect();
    Ok((session.store, Some(keys)))
}

/// What a command names of its recipes: files or folders (a folder stands for the recipes in
/// it), `--set` overrides applied to each, and `--data NAME=PATH` roots, which win over
/// `RSFM_DATA_<NAME>` variables, which win over the recipes' own roots.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecipeInputs<'a> {
    /// Recipe files or folders, in command-line order.
    pub paths: &'a [PathBuf],
    /// `--set KEY=VALUE` overrides.
    pub overrides: &'a [Override],
    /// `--data NAME=PATH` dataset roots.
    pub data: &'a [String],
}

impl RecipeInputs<'_> {
    /// Loads every recipe, overrides and dataset roots applied, and checks its stages as the
    /// plan will; fails with every error of every recipe.
    fn load(&self) -> anyhow::Result<Vec<Recipe>> {
        let mut errors = RecipeErrors::default();
        let mut recipes = Vec::new();
        for path in recipe_paths::expand(self.paths)? {
            match recipe::load_partial(&path, self.overrides) {
                Ok((recipe, load_errors)) => {
                    errors.extend(load_errors);
                    errors.extend(check::recipe_errors(&recipe));
                    recipes.push(recipe);
                }
                Err(load_errors) => errors.extend(load_errors),
            }
        }
        let mut recipes = errors.or_value(recipes)?;
        DataRoots::resolve(&recipes, |name| std::env::var(name).ok(), self.data)
            .and_then(|roots| roots.apply(&mut recipes))
            .map_err(BadInput::wrap)?;
        Ok(recipes)
    }
}

/// Environment variable naming the results directory.
const RESULTS_ENV: &str = "RSFM_RESULTS";

/// Files or folders that mark a project root for the default results directory.
const PROJECT_MARKERS: [&str; 2] = ["rsfm.toml", ".git"];

/// The results directory: `--results` when given, else `$RSFM_RESULTS` when set and not empty,
/// else `results/` at the project root above the current folder.
pub fn results_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os(RESULTS_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let cwd = std::env::current_dir()?;
    Ok(project_root(&cwd).join("results"))
}

/// The nearest folder from `dir` upwards holding `rsfm.toml` or `.git`, else `dir`.
pub fn project_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| PROJECT_MARKERS.iter().any(|m| d.join(m).exists()))
        .unwrap_or(dir)
        .to_path_buf()
}
