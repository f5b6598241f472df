//! `extends`: deep merge, arrays replace, later files win, origins name the winning file.

use rsfm_harness::recipe::{self, Recipe};
use serde_json::json;
use std::path::{Path, PathBuf};

fn folder() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/recipes/extends"
    ))
    .canonicalize()
    .unwrap()
}

fn child() -> Recipe {
    recipe::load(&folder().join("child.toml")).unwrap_or_else(|error| panic!("{error}"))
}

/// The origin of `key` as (file name, line, col).
fn origin(recipe: &Recipe, key: &str) -> (String, usize, usize) {
    let origin = recipe
        .origins
        .iter()
        .find(|origin| origin.key == key)
        .unwrap_or_else(|| panic!("no origin for {key}"));
    let file = origin.location.file.file_name().unwrap();
    (
        file.to_string_lossy().into_owned(),
        origin.location.line,
        origin.location.col,
    )
}

#[test]
fn tables_merge_and_the_extending_file_wins() {
    let recipe = child();
    assert_eq!(recipe.experiment.name, "child");
    assert_eq!(recipe.experiment.seed, 3, "kept from base.toml");
    let train = &recipe.stages[0];
    assert_eq!(train.name, "train");
    assert_eq!(train.params["model"], json!("vit-b"), "from base.toml");
    assert_eq!(train.params["layer_decay"], json!(0.75), "from base.toml");
    assert_eq!(train.params["batch_size"], json!(64), "from tweaks.toml");
    assert_eq!(train.params["lr"], json!(1e-4), "from child.toml");
    assert_eq!(train.sources["lr"], "paper Table 3");
    assert_eq!(train.seed, 3);
    assert_eq!(recipe.stages[1].name, "eval");
    assert_eq!(recipe.stages[1].needs, ["train"]);
}

#[test]
fn later_bases_win_over_earlier_ones() {
    let recipe = child();
    assert_eq!(recipe.stages[0].params["epochs"], json!(20));
    assert_eq!(
        origin(&recipe, "stage.train.epochs"),
        ("tweaks.toml".into(), 2, 1)
    );
}

#[test]
fn arrays_replace_instead_of_merging() {
    let recipe = child();
    assert_eq!(recipe.stages[0].params["lr_steps"], json!([9]));
    assert_eq!(
        origin(&recipe, "stage.train.lr_steps"),
        ("child.toml".into(), 7, 1)
    );
}

#[test]
fn origins_point_at_the_winning_file() {
    let recipe = child();
    assert_eq!(
        origin(&recipe, "experiment.name"),
        ("child.toml".into(), 4, 1)
    );
    assert_eq!(
        origin(&recipe, "experiment.seed"),
        ("base.toml".into(), 3, 1)
    );
    assert_eq!(
        origin(&recipe, "stage.train.model"),
        ("base.toml".into(), 7, 1)
    );
    assert_eq!(
        origin(&recipe, "stage.train.lr"),
        ("child.toml".into(), 8, 1)
    );
    assert_eq!(
        origin(&recipe, "dataset.millionaid.root"),
        ("datasets.toml".into(), 2, 1)
    );
    let lr = recipe
        .origins
        .iter()
        .find(|origin| origin.key == "stage.train.lr")
        .unwrap();
    assert_eq!(lr.value, json!(1e-4));
    assert_eq!(lr.source.as_deref(), Some("paper Table 3"));
    assert!(recipe.origins.iter().all(|origin| origin.key != "extends"));
    let shown = lr.location.to_string();
    assert!(shown.ends_with("extends/child.toml:8:1"), "{shown}");
}

#[test]
fn dataset_roots_resolve_against_the_file_that_defines_them() {
    let recipe = child();
    let millionaid = &recipe.datasets["millionaid"];
    assert_eq!(millionaid.root, folder().join("data").join("millionaid"));
    assert_eq!(recipe.stages[0].datasets, ["millionaid"]);
    assert_eq!(recipe.dir, folder());
    assert_eq!(recipe.path, folder().join("child.toml"));
}

#[test]
fn a_base_can_be_reached_twice_without_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("common.toml", "[experiment]\nname = \"common\"\nseed = 5\n");
    write(
        "left.toml",
        "extends = [\"common.toml\"]\n[experiment]\nname = \"left\"\n",
    );
    write(
        "right.toml",
        "extends = [\"common.toml\"]\n[experiment]\ndescription = \"right\"\n",
    );
    write("top.toml", "extends = [\"left.toml\", \"right.toml\"]\n");
    let recipe = recipe::load(&dir.path().join("top.toml")).unwrap();
    assert_eq!(
        recipe.experiment.name, "common",
        "right.toml re-applies common.toml"
    );
    assert_eq!(recipe.experiment.description.as_deref(), Some("right"));
    assert_eq!(recipe.experiment.seed, 5);
}

#[test]
fn provenance_values_replace_whole() {
    let dir = tempfile::tempdir().unwrap();
    let write =
        |name: &str, text: &str| std::fs::write(Path::new(dir.path()).join(name), text).unwrap();
    write(
        "base.toml",
        "[experiment]\nname = \"p\"\n[stage.t]\nkind = \"finetune-det\"\nmodel = \"m\"\nbatch_size = 1\nlr = { value = 1e-3, source = \"paper\" }\n",
    );
    write(
        "top.toml",
        "extends = [\"base.toml\"]\n[stage.t]\nlr = 2e-3\n",
    );
    let recipe = recipe::load(&dir.path().join("top.toml")).unwrap();
    assert_eq!(recipe.stages[0].params["lr"], json!(2e-3));
    assert!(
        recipe.stages[0].sources.is_empty(),
        "a plain override drops the old source"
    );
}

/// A diamond 26 levels deep: every file extends both files of the next level, so 2^26 paths
/// reach the bottom. Each file is loaded once.
#[test]
fn a_deep_diamond_of_bases_loads_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    const LEVELS: usize = 26;
    for level in 0..LEVELS {
        for side in ["a", "b"] {
            let extends = if level + 1 < LEVELS {
                format!(
                    "extends = [\"l{next}a.toml\", \"l{next}b.toml\"]\n",
                    next = level + 1
                )
            } else {
                String::new()
            };
            std::fs::write(
                dir.path().join(format!("l{level}{side}.toml")),
                format!("{extends}\n[experiment]\nname = \"diamond\"\nseed = {level}\n"),
            )
            .unwrap();
        }
    }
    let top = dir.path().join("top.toml");
    std::fs::write(&top, "extends = [\"l0a.toml\", \"l0b.toml\"]\n").unwrap();
    let started = std::time::Instant::now();
    let loaded = recipe::load(&top).unwrap_or_else(|error| panic!("{error}"));
    println!("26-level diamond extends loaded in {:?}", started.elapsed());
    assert_eq!(loaded.experiment.name, "diamond");
}

#[test]
fn a_base_listed_twice_in_one_extends_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), "[experiment]\nname = \"b\"\n").unwrap();
    let top = dir.path().join("top.toml");
    std::fs::write(&top, "extends = [\"base.toml\", \"./base.toml\"]\n").unwrap();
    let error = recipe::load(&top).unwrap_err().to_string();
    assert!(
        error.contains("`./base.toml` is listed twice") && error.contains("top.toml:1:"),
        "{error}"
    );
}
