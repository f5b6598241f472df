//! Curves that explain a loss: a detector stage logs its four losses and a segmentation stage
//! its main and auxiliary losses beside the total at every logged step, and the total is their
//! combination (the detector's sum, the segmenter's main + `aux_loss_weight` × auxiliary).

use std::collections::BTreeMap;

use crate::common::{repo_root, worker, Project};

const AUX_WEIGHT: f64 = 0.3;

/// A tiny DIOR-R detector (one process and two) and a tiny Potsdam segmenter, 4 steps each,
/// logged every 2.
fn recipe() -> String {
    format!(
        r#"
[experiment]
name = "curves"

[stage.dior]
kind = "prepare"
op = "synth-dior-r"
images = 6
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
log_every = 2

# The detector again as two data-parallel processes of one image each (another RPN sample
# size, so another key: `processes` is not in the key).
[stage.det-2]
kind = "finetune-det"
needs = ["dior"]
dataset = "dior"
format = "dior-r"
model = "vit-tiny"
processes = 2
image_size = 128
window_size = 8
channels = 16
fc_dim = 32
rpn_pre_nms = 100
rpn_post_nms = 32
rpn_batch = 24
roi_batch = 16
steps = 4
batch_size = 2
log_every = 2

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
model = "vit-tiny"
image_size = 32
head_channels = 16
aux_loss_weight = {AUX_WEIGHT}
steps = 4
batch_size = 2
log_every = 2
val_tiles = ["2_10"]
"#
    )
}

/// The values at training steps of stage `stage`: metric name → step → value.
fn curves(project: &Project, stage: &str) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let rows = project.sql(&format!(
        "SELECT m.name AS name, m.step AS step, m.value AS value FROM current_stages s \
         JOIN metrics m ON m.stage_key = s.key WHERE s.name = '{stage}' AND m.step IS NOT NULL"
    ));
    let mut curves: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for row in rows {
        let value = row["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{stage}: a value that is not a number: {row}"));
        curves
            .entry(row["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(row["step"].as_i64().unwrap(), value);
    }
    curves
}

/// Checks that `parts` are logged, finite, at exactly the steps `loss` is, and that
/// `combine(parts at a step)` is the loss there; returns the logged steps.
fn check_parts(
    stage: &str,
    curves: &BTreeMap<String, BTreeMap<i64, f64>>,
    parts: &[&str],
    combine: impl Fn(&[f64]) -> f64,
) -> Vec<i64> {
    let loss = curves
        .get("loss")
        .unwrap_or_else(|| panic!("{stage}: no loss curve: {curves:?}"));
    let steps: Vec<i64> = loss.keys().copied().collect();
    for part in parts {
        let curve = curves
            .get(*part)
            .unwrap_or_else(|| panic!("{stage}: no `{part}` curve: {curves:?}"));
        assert_eq!(
            curve.keys().copied().collect::<Vec<_>>(),
            steps,
            "{stage}: `{part}` is logged at other steps than `loss`"
        );
        assert!(
            curve.values().all(|v| v.is_finite() && *v >= 0.0),
            "{stage}: `{part}` is not a finite non-negative loss: {curve:?}"
        );
    }
    for step in &steps {
        let values: Vec<f64> = parts.iter().map(|p| curves[*p][step]).collect();
        let (total, combined) = (loss[step], combine(&values));
        assert!(
            (total - combined).abs() <= 1e-5 * total.abs().max(1.0),
            "{stage} step {step}: loss {total} but its parts {parts:?} = {values:?} combine to {combined}"
        );
    }
    steps
}

#[test]
fn detector_and_segmenter_curves_hold_their_loss_components() {
    worker();
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("curves.toml", &recipe());
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 5, "{summary}");

    // Two ranks: each part is the mean over the ranks, as the total is, so they still add up.
    for stage in ["det", "det-2"] {
        let det = curves(&project, stage);
        let parts = [
            "loss.rpn_cls",
            "loss.rpn_box",
            "loss.roi_cls",
            "loss.roi_box",
        ];
        let steps = check_parts(stage, &det, &parts, |parts| parts.iter().sum());
        assert_eq!(
            steps,
            [2, 4],
            "{stage}: the detector logs every 2 of 4 steps"
        );
        // Classification losses start near ln 2 (RPN) and ln(classes + 1) (RoI): never zero.
        assert!(det["loss.rpn_cls"].values().all(|v| *v > 0.01), "{det:?}");
        assert!(det["loss.roi_cls"].values().all(|v| *v > 0.01), "{det:?}");
        // Positive RoIs per image: at least the ground truth added to the proposals (every
        // synthetic image has objects), at most roi_batch × 0.25 = 4.
        let positives = &det["roi.positives"];
        assert_eq!(positives.keys().copied().collect::<Vec<_>>(), steps);
        assert!(
            positives.values().all(|v| (1.0..=4.0).contains(v)),
            "{stage}: {positives:?}"
        );
    }

    let seg = curves(&project, "seg");
    let steps = check_parts("seg", &seg, &["loss.main", "loss.aux"], |parts| {
        parts[0] + AUX_WEIGHT * parts[1]
    });
    assert_eq!(steps, [2, 4], "the segmenter logs every 2 of 4 steps");
    assert!(seg["loss.aux"].values().all(|v| *v > 0.01), "{seg:?}");
}
