//! A 3-stage DAG × a 2-value matrix: caching, exact reruns downstream of a change, dataset
//! content vs mtime, and `rsfm explain` naming what changed.

use std::path::PathBuf;

use crate::common::Project;

const RECIPE: &str = r#"
[experiment]
name = "incremental"

[matrix]
variant = ["a", "b"]

[dataset.inputs]
root = "data"

[stage.prepare]
kind = "command"
datasets = ["inputs"]
argv = ["sh", "prepare.sh", "{dataset.inputs}", "{variant}", "{out}"]
deps = ["prepare.sh"]

[stage.train]
kind = "command"
needs = ["prepare"]
argv = ["sh", "train.sh", "{input.prepare}", "3", "{out}"]
deps = ["train.sh"]

[stage.evaluate]
kind = "command"
needs = ["train"]
argv = ["sh", "evaluate.sh", "{input.train}", "{out}"]
deps = ["evaluate.sh"]
"#;

fn project() -> (Project, PathBuf) {
    let project = Project::new();
    project.write("data/words.txt", "alpha beta gamma\n");
    project.write(
        "prepare.sh",
        "cat \"$1/words.txt\" > \"$3/prepared.txt\"; echo \"$2\" >> \"$3/prepared.txt\"\n",
    );
    project.write(
        "train.sh",
        "wc -w < \"$1/prepared.txt\" > \"$3/words\"; echo \"$2\" > \"$3/epochs\"; printf '{\"loss\": %s}' \"$2\" > \"$3/metrics.json\"\n",
    );
    project.write(
        "evaluate.sh",
        "n=$(cat \"$1/words\"); printf '{\"score\": %s}' \"$n\" > \"$2/metrics.json\"\n",
    );
    let recipe = project.write("study.toml", RECIPE);
    (project, recipe)
}

fn explain(project: &Project, recipe: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&project.ok(&["explain", recipe.to_str().unwrap(), "--json"])).unwrap()
}

/// The changed fields `rsfm explain --json` lists for `stage`.
fn changed_fields(explained: &serde_json::Value, stage: &str) -> Vec<String> {
    let entry = explained["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap();
    entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn only_what_changed_reruns_and_explain_names_it() {
    let (project, recipe) = project();
    let first = project.run_json(&recipe, &["--jobs", "2"]);
    assert_eq!(
        (first["executed"].as_u64(), first["cached"].as_u64()),
        (Some(6), Some(0)),
        "{first}"
    );

    let second = project.run_json(&recipe, &[]);
    assert_eq!(
        (second["executed"].as_u64(), second["cached"].as_u64()),
        (Some(0), Some(6)),
        "{second}"
    );

    // One parameter of `train` changes: train and evaluate rerun, prepare stays cached.
    project.write("study.toml", &RECIPE.replace("\"3\"", "\"4\""));
    let explained = explain(&project, &recipe);
    assert_eq!(changed_fields(&explained, "train@a"), ["params.argv[3]"]);
    assert_eq!(changed_fields(&explained, "evaluate@b"), ["needs.train"]);
    assert!(changed_fields(&explained, "prepare@a").is_empty());
    let third = project.run_json(&recipe, &[]);
    assert_eq!(
        (third["executed"].as_u64(), third["cached"].as_u64()),
        (Some(4), Some(2)),
        "{third}"
    );

    // Touching only the mtime of a dataset file reruns nothing.
    let words = project.path("data/words.txt");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&words)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let fourth = project.run_json(&recipe, &[]);
    assert_eq!(fourth["executed"].as_u64(), Some(0), "{fourth}");

    // Changing its content reruns the stages that read it, and everything downstream.
    project.write("data/words.txt", "alpha beta gamma delta\n");
    let explained = explain(&project, &recipe);
    assert_eq!(changed_fields(&explained, "prepare@b"), ["datasets.inputs"]);
    let fifth = project.run_json(&recipe, &[]);
    assert_eq!(fifth["executed"].as_u64(), Some(6), "{fifth}");
    let scores = project.sql("SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key WHERE s.name = 'evaluate@a' AND m.name = 'score' ORDER BY s.finished_at DESC LIMIT 1");
    assert_eq!(scores[0]["value"].as_f64(), Some(5.0));
}
