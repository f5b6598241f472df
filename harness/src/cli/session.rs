//! What `plan`, `run` and `explain` share: loading recipes and opening the results directory.

use std::path::{Path, PathBuf};

use super::{recipe_paths, BadInput};
use crate::cache::Cache;
use crate::dataset_roots::DataRoots;
use crate::plan::Plan;
use crate::recipe::{self, Recipe};
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
    /// `results_dir`, applying migrations under the results dir's `run` lock. A folder stands
    /// for the recipes in it; `RSFM_DATA_<NAME>` variables override dataset roots.
    pub async fn open(recipe_paths: &[PathBuf], results_dir: &Path) -> anyhow::Result<Session> {
        Self::open_with_data(recipe_paths, results_dir, &[]).await
    }

    /// [`Session::open`] with `--data NAME=PATH` overrides of dataset roots, which win over the
    /// environment.
    pub async fn open_with_data(
        recipe_paths: &[PathBuf],
        results_dir: &Path,
        data_flags: &[String],
    ) -> anyhow::Result<Session> {
        let mut recipes = recipe_paths::expand(recipe_paths)?
            .iter()
            .map(|p| recipe::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        DataRoots::resolve(&recipes, |name| std::env::var(name).ok(), data_flags)
            .and_then(|roots| roots.apply(&mut recipes))
            .map_err(|err| BadInput(format!("{err:#}")))?;
        fs_err::create_dir_all(results_dir)?;
        let results_dir = results_dir.canonicalize()?;
        let store = {
            let _lock = crate::lock::lock(&results_dir, "run", |_| {}).await?;
            Store::open(&results_dir.join("rsfm.db")).await?
        };
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
