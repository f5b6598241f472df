//! The paper study (`recipes/paper/study.toml`) planned against a fresh results directory, its
//! datasets pointed at absent folders (nothing here reads them).

use std::path::{Path, PathBuf};

use rsfm_harness::cache::Cache;
use rsfm_harness::dataset_roots::DataRoots;
use rsfm_harness::plan::Plan;
use rsfm_harness::recipe::{self, Recipe};
use rsfm_harness::store::Store;

/// `recipes/paper`.
pub fn paper_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/paper")
}

/// The study's recipe, the store in `dir` and the plan.
pub async fn paper_plan(dir: &Path) -> (Vec<Recipe>, Store, Plan) {
    let mut recipes = vec![recipe::load(&paper_dir().join("study.toml")).unwrap()];
    let absent: Vec<String> = ["millionaid", "dota", "dior-r", "potsdam", "loveda"]
        .iter()
        .map(|name| format!("{name}={}", dir.join("absent").display()))
        .collect();
    DataRoots::resolve(&recipes, |_| None, &absent)
        .unwrap()
        .apply(&mut recipes)
        .unwrap();
    let store = Store::open(&dir.join("rsfm.db")).await.unwrap();
    let cache = Cache::open(dir).unwrap();
    // Worker stages' keys hold the worker's hash: any executable stands in for it here.
    if std::env::var_os("RSFM_WORKER").is_none() {
        std::env::set_var("RSFM_WORKER", std::env::current_exe().unwrap());
    }
    let plan = Plan::build(&recipes, &store, &cache).await.unwrap();
    (recipes, store, plan)
}
