//! What `plan`, `run` and `explain` share: loading recipes and opening the results directory.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
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
    /// `results_dir`, applying migrations under the results dir's `run` lock.
    pub async fn open(recipe_paths: &[PathBuf], results_dir: &Path) -> anyhow::Result<Session> {
        let recipes = recipe_paths
            .iter()
            .map(|p| recipe::load(p))
            .collect::<Result<Vec<_>, _>>()?;
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
