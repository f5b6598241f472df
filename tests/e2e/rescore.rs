//! Re-scoring a detection evaluation without its model: the merged detections a DIOR-R
//! evaluation keeps, scored under VOC12 AP and another IoU, equal fresh evaluations under them.

use crate::common::{repo_root, Project};

/// A tiny DIOR-R detector, evaluated under VOC07 (and kept), VOC12 and IoU 0.7, and the VOC07
/// evaluation rescored under the other two.
const RECIPE: &str = r#"
[experiment]
name = "rescore-det"

[stage.dior]
kind = "prepare"
op = "synth-dior-r"
images = 10
size = 128
seed = 5

[stage.det]
kind = "finetune-det"
needs = ["dior"]
dataset = "dior"
format = "dior-r"
model = "vit-tiny"
image_size = 128
window_size = 8
channels = 16
fc_dim = 32
rpn_pre_nms = 100
rpn_post_nms = 32
rpn_batch = 32
roi_batch = 16
steps = 4
batch_size = 2

[stage.score]
kind = "evaluate"
needs = ["det", "dior"]
dataset = "dior"
format = "dior-r"

[stage.score-voc12]
kind = "evaluate"
needs = ["det", "dior"]
dataset = "dior"
format = "dior-r"
ap_metric = "voc12"
iou = 0.3

[stage.rescore-voc12]
kind = "prepare"
op = "rescore-dior-r"
needs = ["score", "dior"]
dataset = "dior"
predictions = "score"
ap_metric = "voc12"
iou = 0.3
"#;

#[test]
fn a_detection_rescore_under_another_protocol_equals_a_fresh_evaluation() {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("rescore.toml", RECIPE);
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 5, "{summary}");
    let fresh = project.final_metrics("score-voc12");
    assert!(fresh.iter().any(|(n, _)| n == "map"), "{fresh:?}");
    assert!(fresh.iter().any(|(n, _)| n.starts_with("ap.")), "{fresh:?}");
    assert_eq!(project.final_metrics("rescore-voc12"), fresh);
    // Planning refuses a rescore whose `predictions` is not a needed evaluation.
    let bad = project.write(
        "bad.toml",
        &RECIPE.replace("predictions = \"score\"", "predictions = \"det\""),
    );
    let out = project.rsfm(&["plan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::common::text(&out.stderr)
        .contains("`predictions = \"det\"` is not an `evaluate` stage"));
}
