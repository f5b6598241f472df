//! `recipe.resolved.toml` in every cache entry: planned on its own, from the entry's folder, it
//! gives the keys of the stage and of the stages it needs, all cached.

use std::collections::BTreeSet;

use crate::common::Project;

/// A data stage, a matrix fine-tuning stage with a source tag, and its evaluation.
const RECIPE: &str = r#"
[experiment]
name = "replayed"
seed = 3

[matrix]
model = ["vit-tiny"]
fraction = [0.5]

[stage.loveda]
kind = "command"
matrix = []
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth loveda --out \"$1\" --images 4 --size 32 --seed 2", "sh", "{out}"]

[stage.finetune]
kind = "finetune-seg"
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
model = "{model}"
fraction = "{fraction}"
image_size = 32
window_size = 2
head_channels = 16
steps = 1
batch_size = 2
lr = { value = 2e-3, source = "assumed: a high rate for one toy step" }

[stage.evaluate]
kind = "evaluate"
needs = ["finetune", "loveda"]
dataset = "loveda"
format = "loveda"
"#;

/// The keys and statuses of `rsfm plan RECIPE --json`.
fn planned(project: &Project, recipe: &str) -> Vec<(String, String, String)> {
    let plan: serde_json::Value =
        serde_json::from_str(&project.ok(&["plan", recipe, "--json"])).unwrap();
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().unwrap().to_string();
            (field("name"), field("key"), field("status"))
        })
        .collect()
}

#[test]
fn the_resolved_recipe_of_an_entry_replans_to_its_keys_all_cached() {
    let project = Project::new();
    let recipe = project.write("recipes/replayed.toml", RECIPE);
    assert_eq!(project.run_json(&recipe, &[])["executed"], 3);
    let original = planned(&project, recipe.to_str().unwrap());
    let (_, evaluate_key, _) = original
        .iter()
        .find(|(name, _, _)| name.starts_with("evaluate"))
        .unwrap()
        .clone();
    let entry = project
        .results()
        .join("cache")
        .join(&evaluate_key[..2])
        .join(&evaluate_key);
    let resolved = entry.join("recipe.resolved.toml");
    let text = std::fs::read_to_string(&resolved).unwrap();
    assert!(
        text.contains("source = \"assumed: a high rate for one toy step\"")
            && text.contains("# runs with (worker parameters")
            && text.contains("#   window_size = 2  (recipe)"),
        "{text}"
    );
    // The manifest lists it, so `cache verify` checks it like the stage's own files.
    let manifest = std::fs::read_to_string(entry.join("manifest.json")).unwrap();
    assert!(manifest.contains("recipe.resolved.toml"));

    let replayed = planned(&project, resolved.to_str().unwrap());
    let keys = |stages: &[(String, String, String)]| -> BTreeSet<String> {
        stages.iter().map(|(_, key, _)| key.clone()).collect()
    };
    assert_eq!(keys(&replayed), keys(&original), "{replayed:?}");
    assert!(replayed.iter().all(|(_, _, status)| status == "cached"));
    let again = project.run_json(&resolved, &[]);
    assert_eq!(
        (again["executed"].as_u64(), again["cached"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
}
