//! The plan: recipes expanded into a DAG of stages, each with its content key and whether the
//! cache already holds it.

mod build_identity;
pub mod check;
pub mod estimate;
pub mod key;
pub mod key_error;
mod order;
pub mod replay;
pub mod resolved;
pub mod scoring;
pub mod sensitivity;
mod shared_keys;
pub mod stage_params;
mod worker_identity;
pub mod worker_params;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::cache::Cache;
use crate::error::BadInput;
use crate::fingerprint::fingerprint_tree;
use crate::recipe::{Recipe, Stage, StageKind};
use crate::store::Store;
use key::{hash_dep, KeyInputs, KeyManifest};
pub use worker_identity::{missing_worker, rsfm_identity, worker_identity};
use worker_params::{Needed, WorkerParams};

/// The fingerprint that stands in the key of a stage whose dataset root does not exist.
const ABSENT_DATA: &str = "absent";

/// What stands for the worker's identity in provisional keys (see [`Plan::build_provisional`]).
const ABSENT_WORKER: &str = "absent";

/// What a plan does when the `rsfm-worker` is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingWorker {
    /// Fail: the keys of worker stages hold its identity.
    Fail,
    /// Key worker stages on a stand-in identity and record the missing path.
    Provisional,
}

/// A stage of the plan with everything needed to run it.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// The stage as the recipe resolved it.
    pub stage: Stage,
    /// Experiment name of its recipe.
    pub experiment: String,
    /// Folder of its recipe: relative argv and deps resolve here, commands run here.
    pub recipe_dir: PathBuf,
    /// Datasets it reads: (name, root).
    pub datasets: Vec<(String, PathBuf)>,
    /// The formats its datasets' tables give, by dataset name (for `recipe.resolved.toml`).
    pub dataset_formats: BTreeMap<String, String>,
    /// What `stage.json` gets, for the kinds the worker runs (`None` for `command`).
    pub worker_params: Option<WorkerParams>,
    /// Indices (into [`Plan::stages`]) of the stages it needs, in `needs` order.
    pub needs: Vec<usize>,
    /// Its content key and key manifest.
    pub key: KeyManifest,
    /// Whether the cache holds a valid entry for the key (at planning time).
    pub cached: bool,
    /// Datasets it reads, itself or through the stages it needs, whose root does not exist:
    /// its key is provisional (the data's fingerprint is unknown) and it cannot run.
    pub missing_data: Vec<String>,
}

impl PlannedStage {
    /// `experiment/stage`, unique across the recipes of one plan.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.experiment, self.stage.name)
    }
}

/// All stages of one or more recipes, in dependency order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Stages; every stage comes after the stages it needs.
    pub stages: Vec<PlannedStage>,
    /// The `rsfm-worker` that was not found, for a plan built with
    /// [`Plan::build_provisional`]: the keys of its worker stages are provisional (they hold
    /// a stand-in for the worker's identity) and none of them is cached.
    pub missing_worker: Option<PathBuf>,
}

/// One stage of `rsfm plan --json` (the documented contract).
#[derive(Debug, Serialize)]
pub struct PlanEntry {
    /// Stage name (`base@values`).
    pub name: String,
    /// Matrix variables of this stage.
    pub matrix: BTreeMap<String, String>,
    /// Content key.
    pub key: String,
    /// `cached`, `pending`, or `no-data` (a dataset it reads is missing: the key is provisional).
    pub status: &'static str,
    /// Names of the stages it needs.
    pub needs: Vec<String>,
    /// The earlier stage with the same key, whose computation (and record) this one shares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_key_as: Option<String>,
}

impl Plan {
    /// Expands `recipes` into a plan: orders the stages, fingerprints datasets (through the
    /// store's stat cache), hashes deps files and computes every key.
    pub async fn build(recipes: &[Recipe], store: &Store, cache: &Cache) -> anyhow::Result<Plan> {
        Plan::build_with(recipes, store, cache, MissingWorker::Fail).await
    }

    /// [`Plan::build`] for what needs no key (`plan --estimate`): where the `rsfm-worker` is
    /// missing, worker stages get provisional keys and [`Plan::missing_worker`] names it.
    pub async fn build_provisional(
        recipes: &[Recipe],
        store: &Store,
        cache: &Cache,
    ) -> anyhow::Result<Plan> {
        Plan::build_with(recipes, store, cache, MissingWorker::Provisional).await
    }

    async fn build_with(
        recipes: &[Recipe],
        store: &Store,
        cache: &Cache,
        missing: MissingWorker,
    ) -> anyhow::Result<Plan> {
        let mut fingerprints: HashMap<PathBuf, String> = HashMap::new();
        let mut dep_hashes: HashMap<PathBuf, String> = HashMap::new();
        let mut misplaced_roots: HashMap<PathBuf, bool> = HashMap::new();
        let mut worker: Option<serde_json::Value> = None;
        let mut rsfm: Option<serde_json::Value> = None;
        let mut plan = Plan::default();
        for recipe in recipes {
            let ordered = order::topological(&recipe.stages)?;
            let mut index_of: HashMap<&str, usize> = HashMap::new();
            for stage in ordered {
                let datasets = resolve_datasets(recipe, stage)?;
                let mut dataset_fps = Vec::new();
                let mut missing_data = Vec::new();
                for (name, root) in &datasets {
                    // Absent or misplaced (the layout check `run` refuses on): no fingerprint.
                    let misplaced = *misplaced_roots.entry(root.clone()).or_insert_with(|| {
                        recipe
                            .datasets
                            .get(name)
                            .and_then(crate::dataset_roots::problem)
                            .is_some()
                    });
                    if misplaced {
                        missing_data.push(name.clone());
                        dataset_fps.push((name.clone(), ABSENT_DATA.to_string()));
                        continue;
                    }
                    let fp = match fingerprints.get(root) {
                        Some(fp) => fp.clone(),
                        None => {
                            let fp = fingerprint_tree(root, store).await.with_context(|| {
                                format!("fingerprinting dataset `{name}` at {}", root.display())
                            })?;
                            fingerprints.insert(root.clone(), fp.sha256.clone());
                            fp.sha256
                        }
                    };
                    dataset_fps.push((name.clone(), fp));
                }
                let mut deps = Vec::new();
                for dep in check::stage_deps(stage) {
                    let path = recipe.dir.join(&dep);
                    let hash = match dep_hashes.get(&path) {
                        Some(hash) => hash.clone(),
                        None => {
                            let hash = hash_dep(&recipe.dir, &dep).map_err(|err| {
                                BadInput::wrap(check::missing_dep(stage, &recipe.dir, &dep, &err))
                            })?;
                            dep_hashes.insert(path, hash.clone());
                            hash
                        }
                    };
                    deps.push((dep, hash));
                }
                let needs: Vec<usize> = stage.needs.iter().map(|n| index_of[n.as_str()]).collect();
                for &i in &needs {
                    for name in &plan.stages[i].missing_data {
                        if !missing_data.contains(name) {
                            missing_data.push(name.clone());
                        }
                    }
                }
                let needed: Vec<Needed> = needs
                    .iter()
                    .map(|&i| Needed {
                        base: &plan.stages[i].stage.base,
                        kind: plan.stages[i].stage.kind,
                    })
                    .collect();
                let worker_params = worker_params::translate(recipe, stage, &needed)
                    .map_err(crate::error::BadInput::wrap)?;
                let code = match stage.kind {
                    StageKind::Command => None,
                    StageKind::Prepare => {
                        if rsfm.is_none() {
                            rsfm = Some(rsfm_identity(store).await?);
                        }
                        rsfm.clone()
                    }
                    _ => {
                        if worker.is_none() {
                            let absent = match missing {
                                MissingWorker::Provisional => missing_worker(),
                                MissingWorker::Fail => None,
                            };
                            worker = Some(match absent {
                                Some(path) => {
                                    plan.missing_worker = Some(path);
                                    serde_json::json!({ "build": ABSENT_WORKER })
                                }
                                None => worker_identity(store).await?,
                            });
                        }
                        worker.clone()
                    }
                };
                // A published checkpoint enters the key by its content, not its path.
                let pretrained_file = match worker_params
                    .as_ref()
                    .and_then(|w| w.pretrained_file.as_ref())
                {
                    Some(path) => Some(
                        crate::fingerprint::sha256_file_cached(path, store)
                            .await
                            .with_context(|| {
                                format!("hashing the pretrained checkpoint {}", path.display())
                            })?,
                    ),
                    None => None,
                };
                let inputs = KeyInputs {
                    kind: stage.kind.as_str().to_string(),
                    params: worker_params.as_ref().map_or_else(
                        || stage.params.clone(),
                        |w| {
                            let mut params = w.params.clone();
                            params.retain(|name, _| {
                                !rsfm_model::params::left_out_of_key(stage.kind.as_str(), name)
                            });
                            if let Some(sha256) = &pretrained_file {
                                params
                                    .insert("pretrained".into(), format!("sha256:{sha256}").into());
                            }
                            params
                        },
                    ),
                    needs: needs
                        .iter()
                        .map(|&i| {
                            (
                                plan.stages[i].stage.base.clone(),
                                plan.stages[i].key.key.clone(),
                            )
                        })
                        .collect(),
                    datasets: dataset_fps,
                    deps,
                    worker: code,
                    seed: stage.seed,
                };
                let key = inputs.manifest();
                let provisional = plan.missing_worker.is_some()
                    && !matches!(stage.kind, StageKind::Command | StageKind::Prepare);
                let cached =
                    missing_data.is_empty() && !provisional && cache.lookup(&key.key).is_some();
                index_of.insert(stage.name.as_str(), plan.stages.len());
                plan.stages.push(PlannedStage {
                    stage: stage.clone(),
                    experiment: recipe.experiment.name.clone(),
                    recipe_dir: recipe.dir.clone(),
                    dataset_formats: dataset_formats(recipe, stage),
                    datasets,
                    worker_params,
                    needs,
                    key,
                    cached,
                    missing_data,
                });
            }
        }
        Ok(plan)
    }

    /// The `rsfm plan --json` view.
    pub fn entries(&self) -> Vec<PlanEntry> {
        let same_key_as = self.same_key_as();
        self.stages
            .iter()
            .zip(same_key_as)
            .map(|(s, earlier)| PlanEntry {
                name: s.stage.name.clone(),
                matrix: s
                    .stage
                    .matrix
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                key: s.key.key.clone(),
                status: if !s.missing_data.is_empty() {
                    "no-data"
                } else if s.cached {
                    "cached"
                } else {
                    "pending"
                },
                needs: s
                    .needs
                    .iter()
                    .map(|&i| self.stages[i].stage.name.clone())
                    .collect(),
                same_key_as: earlier.map(|j| self.stages[j].display_name()),
            })
            .collect()
    }

    /// Indices of every stage downstream of `index` (transitively), excluding itself.
    pub fn dependents(&self, index: usize) -> Vec<usize> {
        let mut marked = vec![false; self.stages.len()];
        marked[index] = true;
        for i in index + 1..self.stages.len() {
            if self.stages[i].needs.iter().any(|&n| marked[n]) {
                marked[i] = true;
            }
        }
        marked[index] = false;
        (0..self.stages.len()).filter(|&i| marked[i]).collect()
    }
}

/// The formats of the stage's datasets that their tables give, by name.
fn dataset_formats(recipe: &Recipe, stage: &Stage) -> BTreeMap<String, String> {
    stage
        .datasets
        .iter()
        .filter_map(|name| {
            let format = recipe.datasets.get(name)?.format.clone()?;
            Some((name.clone(), format))
        })
        .collect()
}

/// The stage's datasets as (name, absolute root).
fn resolve_datasets(recipe: &Recipe, stage: &Stage) -> anyhow::Result<Vec<(String, PathBuf)>> {
    stage
        .datasets
        .iter()
        .map(|name| {
            let def = recipe.datasets.get(name).with_context(|| {
                format!(
                    "{}: stage `{}` reads unknown dataset `{name}`",
                    stage.location, stage.name
                )
            })?;
            Ok((name.clone(), def.root.clone()))
        })
        .collect()
}
