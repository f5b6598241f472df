//! `recipe.resolved.toml` in every cache entry: planned on its own, from the entry's folder, it
//! gives the keys of the stage and of the stages it needs, all cached (the tiny study of the
//! report test: a data stage, a matrix fine-tuning stage with a source tag, its evaluation).

use std::collections::BTreeSet;

use crate::common::Project;
use crate::report::TINY;

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
    let recipe = project.write("recipes/study/tiny.toml", TINY);
    assert_eq!(project.run_json(&recipe, &[])["executed"], 9);
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
        text.contains("source = \"assumed: a high rate for two toy steps\"")
            && text.contains("# runs with (worker parameters"),
        "{text}"
    );
    // Each worker parameter with its origin as `config show --resolved` gives it: the recipe
    // line (and source tag), the preset line.
    let line_of = |key: &str| TINY.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let comment = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {text}"))
    };
    assert!(
        comment("#   window_size = 2  (recipe ")
            .ends_with(&format!("tiny.toml:{}:1)", line_of("window_size"))),
        "{text}"
    );
    assert!(
        comment("#   lr = 0.002  (recipe ").ends_with(&format!(
            "tiny.toml:{}:1; assumed: a high rate for two toy steps)",
            line_of("lr")
        )),
        "{text}"
    );
    assert!(
        comment("#   model.embed_dim = ").contains("(preset built-in vit-tiny:"),
        "{text}"
    );
    // The manifest lists it, so `cache verify` checks it like the stage's own files.
    let manifest = std::fs::read_to_string(entry.join("manifest.json")).unwrap();
    assert!(manifest.contains("recipe.resolved.toml"));

    let replayed = planned(&project, resolved.to_str().unwrap());
    let keys = |stages: &[(String, String, String)]| -> BTreeSet<String> {
        stages.iter().map(|(_, key, _)| key.clone()).collect()
    };
    // The first evaluation, its fine-tuning and the data stage: keys of the original plan.
    assert_eq!(replayed.len(), 3, "{replayed:?}");
    assert!(keys(&replayed).is_subset(&keys(&original)), "{replayed:?}");
    assert!(keys(&replayed).contains(&evaluate_key));
    assert!(replayed.iter().all(|(_, _, status)| status == "cached"));
    let again = project.run_json(&resolved, &[]);
    assert_eq!(
        (again["executed"].as_u64(), again["cached"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
}
