//! `rescore-potsdam`: the stored predictions of a segmentation evaluation
//! (`predictions/<id>.png`) scored again against other reference labels, without the model.
//! The samples, the labels and the metrics are read and computed as the evaluation does, so a
//! rescore under a protocol gives exactly what a fresh evaluation under it gives.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::data::image_io::read_label_png;
use crate::data::seg_samples::{list_samples, Part, IGNORE_INDEX, PREDICTIONS_DIR};
use crate::metrics::segmentation::ConfusionMatrix;
use crate::params::data::SegDataParams;

/// Scores the predictions in `evaluation` (an evaluation's output folder) against the held-out
/// labels of the dataset at `root` as `data` selects them (format, tiles, label variant).
pub fn rescore_seg(
    evaluation: &Path,
    root: &Path,
    data: &SegDataParams,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let samples = list_samples(root, data, Part::Val)?;
    let num_classes = data.format.num_classes();
    let mut confusion = ConfusionMatrix::new(num_classes).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    Ok(confusion
        .report(&[])
        .stage_metrics(&data.format.class_names(), samples.len()))
}
