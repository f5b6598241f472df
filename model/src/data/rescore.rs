//! Re-scoring an evaluation without its model: a segmentation evaluation's stored predictions
//! (`predictions/<id>.png`) against other reference labels (`rescore-potsdam`), a detection
//! evaluation's merged detections (`task1/Task1_<class>.txt`) under another AP protocol, AP
//! variant or IoU (`rescore-dota`, `rescore-dior-r`). Samples, ground truth and metrics are read
//! and computed as the evaluation does, so a rescore under a protocol gives exactly what a
//! fresh evaluation under it gives.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::data::det_samples::{self, ground_truths, TASK1_DIR};
use crate::data::formats::dota::read_task1_dir;
use crate::data::image_io::read_label_png;
use crate::data::seg_samples::{list_samples, Part, IGNORE_INDEX, PREDICTIONS_DIR};
use crate::metrics::detection::{evaluate, Detection, EvalOptions};
use crate::metrics::segmentation::ConfusionMatrix;
use crate::params::data::DetDataParams;
use crate::params::data::SegDataParams;

/// Scores the predictions in `evaluation` (an evaluation's output folder) against the held-out
/// labels of the dataset at `root` as `data` selects them (format, tiles, label variant).
pub fn rescore_seg(
    evaluation: &Path,
    root: &Path,
    data: &SegDataParams,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let samples = list_samples(root, data, Part::Val)?;
    let scored = data.scored_classes();
    let mut confusion = ConfusionMatrix::new(scored.len()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for sample in &samples {
        let path = evaluation
            .join(PREDICTIONS_DIR)
            .join(format!("{}.png", sample.id));
        let prediction = read_label_png(&path).with_context(|| {
            format!(
                "the evaluation has no prediction for `{}`: it scored other images (its `val_tiles` or dataset differ) or predates stored predictions",
                sample.id
            )
        })?;
        let (width, height, labels) = sample.load_labels()?;
        anyhow::ensure!(
            (prediction.width, prediction.height) == (width, height),
            "{}: {}×{} pixels, the labels of `{}` are {width}×{height}",
            path.display(),
            prediction.width,
            prediction.height,
            sample.id
        );
        confusion
            .accumulate(&prediction.data, &labels, Some(IGNORE_INDEX))
            .map_err(|e| anyhow::anyhow!("{}: {e}", sample.id))?;
    }
    Ok(confusion.report(&[]).stage_metrics(&scored, samples.len()))
}

/// Scores the merged detections in `evaluation` (a detection evaluation's output folder)
/// against the held-out ground truth of the dataset at `root` (as `data` reads it) under
/// `options`.
pub fn rescore_det(
    evaluation: &Path,
    root: &Path,
    data: &DetDataParams,
    options: &EvalOptions,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let samples = det_samples::list_samples(root, data, Part::Val)?;
    let classes = data.class_names()?;
    let (_, task1) = read_task1_dir(&evaluation.join(TASK1_DIR)).with_context(|| {
        "the evaluation kept no merged detections: it predates them or is not a detection evaluation"
    })?;
    let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
    let scores = evaluate(&ground_truths(&samples, &classes), &dets, &classes, options);
    Ok(scores.stage_metrics(samples.len(), dets.len()))
}
