//! Potsdam's label variants: a stage reads the full labels (`*_label.tif`) or the benchmark's
//! eroded ones (`*_label_noBoundary.tif`) as `labels` says, and the choice is in the key.

use std::path::PathBuf;

use crate::common::{repo_root, Project};

fn recipe(labels: Option<&str>) -> String {
    let labels = labels.map_or(String::new(), |l| format!("labels = \"{l}\"\n"));
    format!(
        r#"
[experiment]
name = "labels"

[stage.potsdam]
kind = "prepare"
op = "synth-potsdam"
images = 6
size = 64
seed = 4

[stage.seg]
kind = "finetune-seg"
needs = ["potsdam"]
dataset = "potsdam"
format = "potsdam"
{labels}model = "vit-tiny"
image_size = 32
head_channels = 16
steps = 2
batch_size = 2
val_tiles = ["2_10"]

[stage.score]
kind = "evaluate"
needs = ["seg", "potsdam"]
dataset = "potsdam"
format = "potsdam"
{labels}val_tiles = ["2_10"]
"#
    )
}

fn project(labels: Option<&str>) -> (Project, PathBuf) {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("labels.toml", &recipe(labels));
    (project, recipe)
}

#[test]
fn the_eroded_labels_are_read_when_asked_and_enter_the_key() {
    let key = |labels| {
        let (project, recipe) = project(labels);
        (
            project.stage_key(&recipe, "seg"),
            project.stage_key(&recipe, "score"),
        )
    };
    let (full, unset, eroded) = (key(Some("full")), key(None), key(Some("eroded")));
    assert_eq!(full, unset, "unset reads the full labels");
    assert_ne!(full.0, eroded.0);
    assert_ne!(full.1, eroded.1);

    let (project, recipe) = project(Some("eroded"));
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 3, "{summary}");
    let log = std::fs::read_to_string(
        project
            .results()
            .join("work")
            .join(&eroded.0)
            .join("stage.log"),
    )
    .unwrap();
    assert!(
        log.contains("fine-tuning on 5 of 5 training images"),
        "{log}"
    );
    assert!(project.metric("score", "oa") > 0.0);
}

/// The labels recipe with both variants scored by the model and, from the full-label
/// evaluation's stored predictions, rescored under each without running the model.
fn rescore_recipe() -> String {
    let scored = |name: &str, labels: &str| {
        format!(
            "\n[stage.{name}]\nkind = \"evaluate\"\nneeds = [\"seg\", \"potsdam\"]\ndataset = \"potsdam\"\nformat = \"potsdam\"\nlabels = \"{labels}\"\nval_tiles = [\"2_10\"]\n"
        )
    };
    let rescored = |name: &str, labels: &str| {
        format!(
            "\n[stage.{name}]\nkind = \"prepare\"\nop = \"rescore-potsdam\"\nneeds = [\"score\", \"potsdam\"]\ndataset = \"potsdam\"\npredictions = \"score\"\nlabels = \"{labels}\"\nval_tiles = [\"2_10\"]\n"
        )
    };
    format!(
        "{}{}{}{}{}{}",
        recipe(None),
        scored("score-eroded", "eroded"),
        rescored("rescore-eroded", "eroded"),
        rescored("rescore-full", "full"),
        scored("score-clutter", "full") + "clutter = true\n",
        rescored("rescore-clutter", "full") + "clutter = true\n",
    )
}

#[test]
fn a_rescore_under_the_other_labels_equals_a_fresh_evaluation_under_them() {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("rescore.toml", &rescore_recipe());
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 8, "{summary}");
    let (fresh_eroded, fresh_full) = (
        project.final_metrics("score-eroded"),
        project.final_metrics("score"),
    );
    assert!(
        fresh_eroded.iter().any(|(n, _)| n == "iou.building"),
        "{fresh_eroded:?}"
    );
    assert_ne!(
        fresh_eroded, fresh_full,
        "the two label variants score differently"
    );
    assert_eq!(project.final_metrics("rescore-eroded"), fresh_eroded);
    assert_eq!(project.final_metrics("rescore-full"), fresh_full);
    // Clutter scored as a sixth class: a fresh evaluation and a rescore agree on it too.
    let fresh_clutter = project.final_metrics("score-clutter");
    assert!(
        fresh_clutter.iter().any(|(n, _)| n == "iou.clutter"),
        "{fresh_clutter:?}"
    );
    assert_eq!(project.final_metrics("rescore-clutter"), fresh_clutter);
    // The report says what the labels alone change, beside the table.
    project.copy_paper_folder();
    project.ok(&[
        "report",
        recipe.to_str().unwrap(),
        "--paper",
        "paper",
        "--table",
        "potsdam",
        "--format",
        "md",
        "--out",
        "reports",
    ]);
    let table = std::fs::read_to_string(project.path("reports/potsdam.md")).unwrap();
    assert!(
        table.contains("Protocol sensitivity")
            && table.contains("labels=eroded val_tiles=[\"2_10\"]: OA Δ ")
            && table.contains("(vit-tiny)"),
        "{table}"
    );
    // No worker ran for the rescores: `rsfm prepare` did.
    let kinds = project.sql("SELECT kind FROM stages WHERE name LIKE 'rescore%'");
    assert!(kinds.iter().all(|k| k["kind"] == "prepare"), "{kinds:?}");
}
