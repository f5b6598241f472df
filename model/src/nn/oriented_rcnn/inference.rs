//! From head outputs to detections: score threshold, per-class rotated NMS, a cap per image;
//! and whole large images predicted patch by patch and merged.

use tch::{Device, Tensor};

use super::OrientedRcnn;
use crate::data::formats::dota::Task1Detection;
use crate::data::image_io::Image;
use crate::data::tiling::{merge_detections, patch_name, split_windows, SplitOptions};
use crate::geometry::{rotated_nms_per_class, RotatedBox};
use crate::train::images::{standardize, to_tensor};

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The oriented box in image pixels.
    pub rbox: RotatedBox,
    /// Class probability.
    pub score: f64,
    /// Class index.
    pub class: usize,
}

/// Post-processing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostSettings {
    /// Smallest score kept.
    pub score_threshold: f64,
    /// Per-class rotated NMS IoU threshold.
    pub nms_iou: f64,
    /// Detections kept per image.
    pub max_detections: usize,
}

/// Detections from the boxes of each RoI and its class probabilities `probs`
/// (`boxes.len() × (num_classes + 1)`, background last), best first.
pub fn postprocess(
    boxes: &[RotatedBox],
    probs: &[f32],
    num_classes: usize,
    cfg: &PostSettings,
) -> Vec<Detection> {
    let mut candidates = Vec::new();
    for (r, rbox) in boxes.iter().enumerate() {
        if !(rbox.w > 0.0 && rbox.h > 0.0) {
            continue;
        }
        let row = &probs[r * (num_classes + 1)..(r + 1) * (num_classes + 1)];
        for (class, &p) in row[..num_classes].iter().enumerate() {
            if f64::from(p) > cfg.score_threshold {
                candidates.push(Detection {
                    rbox: *rbox,
                    score: f64::from(p),
                    class,
                });
            }
        }
    }
    let rboxes: Vec<RotatedBox> = candidates.iter().map(|d| d.rbox).collect();
    let scores: Vec<f64> = candidates.iter().map(|d| d.score).collect();
    let classes: Vec<usize> = candidates.iter().map(|d| d.class).collect();
    let mut keep = rotated_nms_per_class(&rboxes, &scores, &classes, cfg.nms_iou);
    keep.truncate(cfg.max_detections);
    keep.into_iter().map(|i| candidates[i]).collect()
}

/// How a large image is cut for prediction and merged back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TiledPrediction {
    /// Patch side (the model's input size).
    pub patch_size: u32,
    /// Overlap between patches.
    pub gap: u32,
    /// Rotated NMS IoU threshold of the merge.
    pub merge_iou: f64,
    /// Patches per forward pass.
    pub batch: usize,
}

/// Detections on a whole image in image coordinates: predicted on DOTA-style patches
/// (padded with 0 at the right and bottom), shifted back and merged with rotated NMS.
pub fn predict_large_image(
    model: &OrientedRcnn,
    image: &Image,
    image_id: &str,
    class_names: &[String],
    tiling: &TiledPrediction,
    device: Device,
) -> anyhow::Result<Vec<Task1Detection>> {
    let options = SplitOptions {
        patch_size: tiling.patch_size,
        gap: tiling.gap,
        ..SplitOptions::default()
    };
    let windows = split_windows(image.width, image.height, &options);
    let mut detections = Vec::new();
    for chunk in windows.chunks(tiling.batch.max(1)) {
        let patches: Vec<Tensor> = chunk
            .iter()
            .map(|w| {
                let crop = image.crop_padded(
                    i64::from(w.x),
                    i64::from(w.y),
                    tiling.patch_size,
                    tiling.patch_size,
                    0,
                );
                standardize(&to_tensor(&crop))
            })
            .collect();
        let batch = Tensor::stack(&patches, 0).to_device(device);
        for (window, found) in chunk.iter().zip(model.predict(&batch)) {
            let name = patch_name(image_id, window);
            for d in found {
                let class = class_names.get(d.class).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the model predicts class {} but only {} class names were given",
                        d.class,
                        class_names.len()
                    )
                })?;
                detections.push(Task1Detection {
                    image: name.clone(),
                    class: class.clone(),
                    score: d.score,
                    poly: d.rbox.corners(),
                });
            }
        }
    }
    Ok(merge_detections(&detections, tiling.merge_iou)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_suppresses_per_class_and_caps() {
        let a = RotatedBox::new(10.0, 10.0, 8.0, 4.0, 0.2);
        let b = RotatedBox::new(10.5, 10.0, 8.0, 4.0, 0.2);
        let c = RotatedBox::new(40.0, 40.0, 8.0, 4.0, 0.0);
        // Two classes + background.
        let probs = [0.7f32, 0.2, 0.1, 0.6, 0.3, 0.1, 0.01, 0.5, 0.49];
        let cfg = PostSettings {
            score_threshold: 0.05,
            nms_iou: 0.1,
            max_detections: 10,
        };
        let got = postprocess(&[a, b, c], &probs, 2, &cfg);
        let summary: Vec<(usize, usize)> = got
            .iter()
            .map(|d| {
                (
                    d.class,
                    [a, b, c].iter().position(|x| *x == d.rbox).unwrap(),
                )
            })
            .collect();
        // Class 0: a beats b (overlap), c is below the threshold; class 1: b beats a, c kept.
        assert_eq!(summary, vec![(0, 0), (1, 2), (1, 1)]);
        let capped = postprocess(
            &[a, b, c],
            &probs,
            2,
            &PostSettings {
                max_detections: 1,
                ..cfg
            },
        );
        assert_eq!(capped.len(), 1);
    }
}
