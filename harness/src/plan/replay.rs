//! `recipe.resolved.toml` ([`crate::cache::RESOLVED_RECIPE_FILE`]), written into every cache entry: a recipe of the entry's stage and
//! every stage it needs, with matrix values filled in, dataset roots absolute and provenance
//! kept, so that the run can be repeated from its output folder alone (`rsfm run
//! ENTRY/recipe.resolved.toml` plans the same keys). Comments list what the worker ran with
//! (the `params` of `stage.json`) and where each value came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::{resolved, Plan, PlannedStage};
use crate::recipe::quote_key as toml_key;

/// The resolved recipe of `plan.stages[index]` and the stages it needs, as TOML text.
pub fn resolved_recipe(plan: &Plan, index: usize) -> String {
    let chain = chain(plan, index);
    let names = stage_names(plan, &chain);
    let target = &plan.stages[index];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Resolved recipe of `{}` (key {}), written when its cache entry was committed: the",
        target.display_name(),
        target.key.key
    );
    out.push_str(
        "# stage and every stage it needs, matrix values filled in, dataset roots absolute.\n\
         # `rsfm run` on this file plans the same keys while the datasets, the worker build and\n\
         # the model presets it names are unchanged (`rsfm explain` names what differs).\n\n",
    );
    let _ = writeln!(
        out,
        "[experiment]\nname = {}\n",
        toml_string(&target.experiment)
    );
    write_datasets(&mut out, plan, &chain);
    for &i in &chain {
        write_stage(&mut out, plan, i, &names);
    }
    out
}

/// `index` and every stage it needs, transitively, in plan (dependency) order.
fn chain(plan: &Plan, index: usize) -> Vec<usize> {
    let mut wanted = BTreeSet::from([index]);
    let mut todo = vec![index];
    while let Some(i) = todo.pop() {
        for &need in &plan.stages[i].needs {
            if wanted.insert(need) {
                todo.push(need);
            }
        }
    }
    wanted.into_iter().collect()
}

/// The name each stage of `chain` gets in the resolved recipe: its base name (what
/// `{input.X}` and `stage.json`'s inputs call it), or `base-KEY8` where two stages of the chain
/// share a base.
fn stage_names(plan: &Plan, chain: &[usize]) -> BTreeMap<usize, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in chain {
        *count.entry(plan.stages[i].stage.base.as_str()).or_default() += 1;
    }
    chain
        .iter()
        .map(|&i| {
            let stage = &plan.stages[i];
            let name = if count[stage.stage.base.as_str()] == 1 {
                stage.stage.base.clone()
            } else {
                format!("{}-{}", stage.stage.base, &stage.key.key[..8])
            };
            (i, name)
        })
        .collect()
}

/// `[dataset.NAME]` of every dataset the chain reads, each once.
fn write_datasets(out: &mut String, plan: &Plan, chain: &[usize]) {
    let mut written = BTreeSet::new();
    for &i in chain {
        let stage = &plan.stages[i];
        for (name, root) in &stage.datasets {
            if !written.insert(name.clone()) {
                continue;
            }
            let _ = writeln!(out, "[dataset.{}]", toml_key(name));
            let _ = writeln!(out, "root = {}", toml_string(&root.to_string_lossy()));
            if let Some(format) = stage.dataset_formats.get(name) {
                let _ = writeln!(out, "format = {}", toml_string(format));
            }
            out.push('\n');
        }
    }
}

/// One `[stage.NAME]` table: a comment block with its key, matrix values and resolved worker
/// parameters, then its kind, needs, datasets, seed, resources and parameters as written.
fn write_stage(out: &mut String, plan: &Plan, index: usize, names: &BTreeMap<usize, String>) {
    let planned = &plan.stages[index];
    let stage = &planned.stage;
    let _ = writeln!(
        out,
        "# {} (key {})",
        planned.display_name(),
        planned.key.key
    );
    write_worker_params(out, planned);
    let _ = writeln!(out, "[stage.{}]", toml_key(&names[&index]));
    let _ = writeln!(out, "kind = {}", toml_string(stage.kind.as_str()));
    if !planned.needs.is_empty() {
        let needs: Vec<String> = planned
            .needs
            .iter()
            .map(|n| toml_string(&names[n]))
            .collect();
        let _ = writeln!(out, "needs = [{}]", needs.join(", "));
    }
    if !stage.datasets.is_empty() {
        let datasets: Vec<String> = stage.datasets.iter().map(|d| toml_string(d)).collect();
        let _ = writeln!(out, "datasets = [{}]", datasets.join(", "));
    }
    let _ = writeln!(out, "seed = {}", stage.seed);
    let resources = &stage.resources;
    if resources.gpus > 0 {
        let _ = writeln!(out, "gpus = {}", resources.gpus);
    }
    if let Some(processes) = resources.processes {
        let _ = writeln!(out, "processes = {processes}");
    }
    if let Some(nodes) = resources.nodes {
        let _ = writeln!(out, "nodes = {nodes}");
    }
    if let Some(gib) = resources.gpu_mem_gb {
        let _ = writeln!(out, "gpu_mem_gb = {}", toml::Value::Float(gib));
    }
    if let Some(limit) = resources.time_limit {
        let _ = writeln!(out, "time_limit = \"{}s\"", limit.as_secs());
    }
    if stage.retries > 0 {
        let _ = writeln!(out, "retries = {}", stage.retries);
    }
    for (key, value) in &stage.params {
        match toml_value(value) {
            Some(text) => match stage.sources.get(key) {
                Some(source) => {
                    let _ = writeln!(
                        out,
                        "{} = {{ value = {text}, source = {} }}",
                        toml_key(key),
                        toml_string(source)
                    );
                }
                None => {
                    let _ = writeln!(out, "{} = {text}", toml_key(key));
                }
            },
            None => {
                let _ = writeln!(out, "# {}: unset", toml_key(key));
            }
        }
    }
    out.push('\n');
}

/// The worker's parameters (`stage.json`'s `params`, the inlined preset's keys as `model.KEY`)
/// as comment lines, each with where it comes from as `rsfm config show --resolved` says it
/// (recipe or preset file:line, a rule of the kind, inferred, default), and its source tag.
fn write_worker_params(out: &mut String, planned: &PlannedStage) {
    let Some(worker) = &planned.worker_params else {
        return;
    };
    let stage = &planned.stage;
    if !stage.matrix.is_empty() {
        let values: Vec<String> = stage
            .matrix
            .iter()
            .map(|(axis, value)| format!("{axis} = {value}"))
            .collect();
        let _ = writeln!(out, "# matrix: {}", values.join(", "));
    }
    let values = match resolved::trace(&planned.recipe_dir, stage, worker) {
        Ok(values) => values,
        Err(error) => {
            let _ = writeln!(out, "# worker parameters not traced: {error:#}");
            return;
        }
    };
    out.push_str("# runs with (worker parameters, and where each comes from):\n");
    for value in values {
        let shown = serde_json::to_string(&value.value).unwrap_or_default();
        let source = stage
            .sources
            .get(&value.key)
            .map(|source| format!("; {source}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "#   {} = {shown}  ({}{source})",
            value.key, value.origin
        );
    }
}

/// A JSON value as an inline TOML value; `None` for what TOML cannot hold (`null`).
fn toml_value(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    toml::Value::try_from(value).ok().map(|v| v.to_string())
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bare_only_when_they_can_be() {
        assert_eq!(toml_key("finetune"), "finetune");
        assert_eq!(toml_key("finetune@vit-tiny"), "\"finetune@vit-tiny\"");
        assert_eq!(toml_key("a.b"), "\"a.b\"");
        for name in ["a.b", "x\"y", "back\\slash", "new\nline", "é"] {
            let parsed: toml::Table =
                toml::from_str(&format!("[s.{}]\nv = 1", toml_key(name))).unwrap();
            assert!(
                parsed["s"].as_table().unwrap().contains_key(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn values_keep_their_types_and_null_is_left_out() {
        assert_eq!(toml_value(&serde_json::json!(2e-3)).unwrap(), "0.002");
        assert_eq!(toml_value(&serde_json::json!(3)).unwrap(), "3");
        assert_eq!(toml_value(&serde_json::json!(1.0)).unwrap(), "1.0");
        assert_eq!(
            toml_value(&serde_json::json!(["a\"b", 1])).unwrap(),
            "['a\"b', 1]"
        );
        assert!(toml_value(&Value::Null).is_none());
        for text in ["x\ny", "it's \"quoted\"", "tab\there", "{input.x}"] {
            let parsed: toml::Table =
                toml::from_str(&format!("v = {}", toml_string(text))).unwrap();
            assert_eq!(parsed["v"].as_str(), Some(text));
        }
    }
}
