//! Rotated-box detection mAP under the DOTA devkit and MMRotate protocols.
//!
//! [`evaluate`] reproduces each reference exactly, with one deliberate choice where the
//! references are unspecified: detections are sorted by score with a **stable** sort, so
//! ties keep the order in which the detections are given (give them image-major, as the
//! devkit's Task1 files and MMRotate's per-image results list them). NumPy's default
//! `argsort` is not stable, so tie order there is arbitrary.
//!
//! | | devkit / devkit-v1.5 | mmrotate (1.x, 0.x) |
//! |---|---|---|
//! | geometry | raw polygons, exact f64 IoU | min-area rectangles of the polygons; IoU rounded to f32 |
//! | match | `IoU > thr` | `IoU ≥ thr` (in f32) |
//! | target | first argmax in annotation order | first argmax over `[normal…, ignored…]` |
//! | difficult | ignored (v1.0) / counted (v1.5) | counted by default, or ignored |
//! | recall, precision | f64 | f64 recall, f32 precision, f32 AP |
//! | mAP | mean over **all** classes | mean over classes with ground truth |
//!
//! A det that matches an ignored ground truth is neither TP nor FP; a det whose best
//! ground truth is already matched is an FP (no fallback to the second best).

mod ap;
mod matching;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use rayon::prelude::*;
use serde::Serialize;

use crate::geometry::Quad;

/// One ground-truth object.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Image identifier (file stem).
    pub image: String,
    /// Class name.
    pub class: String,
    /// Corner polygon in image coordinates.
    pub poly: Quad,
    /// The annotation's `difficult` flag.
    pub difficult: bool,
}

/// One detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Image identifier (file stem).
    pub image: String,
    /// Class name.
    pub class: String,
    /// Confidence; NaN ranks below every number.
    pub score: f64,
    /// Corner polygon in image coordinates.
    pub poly: Quad,
}

/// Which reference evaluation to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DOTA devkit `dota_evaluation_task1.py` (v1.0): difficult objects are ignored; AP is
    /// undefined (`None`) for a class without detections, where the devkit crashes.
    Devkit,
    /// DOTA devkit `dota-v1.5_evaluation_task1.py`: every object counts (difficult forced to 0).
    DevkitV15,
    /// MMRotate 1.x `eval_rbbox_map`. Difficult objects are ordinary ground truth unless
    /// `ignore_difficult`, which passes them as ignored boxes; then, as in 1.x, an image
    /// with no non-ignored object also loses its ignored ones (dets on them become FPs).
    Mmrotate {
        /// Pass difficult objects as ignored boxes (`diff_thr` below their difficulty).
        ignore_difficult: bool,
    },
    /// MMRotate 0.x `eval_rbbox_map`: as [`Protocol::Mmrotate`] without the 1.x quirk.
    MmrotateV0 {
        /// Pass difficult objects as ignored boxes.
        ignore_difficult: bool,
    },
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "devkit" => Protocol::Devkit,
            "devkit-v1.5" => Protocol::DevkitV15,
            "mmrotate" => Protocol::Mmrotate {
                ignore_difficult: false,
            },
            "mmrotate-ignore-difficult" => Protocol::Mmrotate {
                ignore_difficult: true,
            },
            "mmrotate-0.x" => Protocol::MmrotateV0 {
                ignore_difficult: false,
            },
            "mmrotate-0.x-ignore-difficult" => Protocol::MmrotateV0 {
                ignore_difficult: true,
            },
            other => {
                return Err(format!(
                    "unknown protocol `{other}`: use devkit, devkit-v1.5, mmrotate, \
                     mmrotate-ignore-difficult, mmrotate-0.x or mmrotate-0.x-ignore-difficult"
                ))
            }
        })
    }
}

/// How AP is integrated over the precision–recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApMetric {
    /// PASCAL VOC 2007 11-point interpolation (thresholds `k·0.1` in f64).
    Voc07,
    /// PASCAL VOC 2010+ area under the precision envelope.
    Voc12,
}

impl FromStr for ApMetric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voc07" => Ok(ApMetric::Voc07),
            "voc12" => Ok(ApMetric::Voc12),
            other => Err(format!("unknown AP metric `{other}`: use voc07 or voc12")),
        }
    }
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Reference protocol.
    pub protocol: Protocol,
    /// AP integration.
    pub metric: ApMetric,
    /// IoU thresholds; the report averages over them.
    pub iou_thresholds: Vec<f64>,
}

impl EvalOptions {
    /// The options stages name: a protocol (`devkit`, `devkit-v1.5`, `mmrotate`), an AP metric
    /// (`voc07`, `voc12`) and one IoU threshold.
    pub fn named(protocol: &str, metric: &str, iou: f64) -> Result<EvalOptions, String> {
        Ok(EvalOptions {
            protocol: protocol.parse().map_err(|e| format!("protocol: {e}"))?,
            metric: metric.parse().map_err(|e| format!("ap_metric: {e}"))?,
            iou_thresholds: vec![iou],
        })
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            protocol: Protocol::Devkit,
            metric: ApMetric::Voc07,
            iou_thresholds: vec![0.5],
        }
    }
}

/// Result of [`evaluate`]. Serialises to `{"map": f64|null, "ap": {"class": f64|null}}`
/// (plus `per_threshold` when there are several thresholds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionReport {
    /// mAP averaged over the IoU thresholds; NaN (JSON `null`) where the protocol leaves
    /// it undefined (devkit: some class AP undefined).
    pub map: f64,
    /// Per-class AP averaged over the thresholds; `None` where the protocol leaves it
    /// undefined (devkit: class without detections, or VOC12 with no counted ground truth).
    pub ap: BTreeMap<String, Option<f64>>,
    /// `(IoU threshold, mAP)` for each threshold.
    #[serde(skip_serializing_if = "single_threshold")]
    pub per_threshold: Vec<(f64, f64)>,
}

impl DetectionReport {
    /// The final metrics of a detection evaluation as stages report them: `map`,
    /// `ap.<class>` (NaN where the protocol leaves an AP undefined), `images`, `detections`.
    pub fn stage_metrics(&self, images: usize, detections: usize) -> BTreeMap<String, f64> {
        let mut metrics = BTreeMap::new();
        metrics.insert("map".to_string(), self.map);
        for (class, ap) in &self.ap {
            metrics.insert(format!("ap.{class}"), ap.unwrap_or(f64::NAN));
        }
        metrics.insert("images".to_string(), images as f64);
        metrics.insert("detections".to_string(), detections as f64);
        metrics
    }
}

fn single_threshold(per_threshold: &[(f64, f64)]) -> bool {
    per_threshold.len() <= 1
}

/// Evaluates `dets` against `gts` for `classes` under `opts`. Objects and detections of
/// other classes are ignored; detections on images without ground truth are FPs.
pub fn evaluate(
    gts: &[GroundTruth],
    dets: &[Detection],
    classes: &[String],
    opts: &EvalOptions,
) -> DetectionReport {
    let class_index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut image_ids: HashMap<&str, usize> = HashMap::new();
    let mut gts_by_class: Vec<Vec<matching::GtRef>> = vec![Vec::new(); classes.len()];
    for gt in gts {
        if let Some(&c) = class_index.get(gt.class.as_str()) {
            gts_by_class[c].push(matching::GtRef {
                image: intern(&mut image_ids, &gt.image),
                poly: &gt.poly,
                difficult: gt.difficult,
            });
        }
    }
    let mut dets_by_class: Vec<Vec<matching::DetRef>> = vec![Vec::new(); classes.len()];
    for det in dets {
        if let Some(&c) = class_index.get(det.class.as_str()) {
            dets_by_class[c].push(matching::DetRef {
                image: intern(&mut image_ids, &det.image),
                score: det.score,
                poly: &det.poly,
            });
        }
    }
    let images_with_normal_gt = matching::images_with_normal_gt(&gts_by_class, image_ids.len());
    let context = matching::Context {
        protocol: opts.protocol,
        metric: opts.metric,
        thresholds: &opts.iou_thresholds,
        images_with_normal_gt: &images_with_normal_gt,
    };
    // Per class, per threshold: (AP, whether the class enters the mean).
    let per_class: Vec<Vec<(Option<f64>, bool)>> = gts_by_class
        .par_iter()
        .zip(dets_by_class.par_iter())
        .map(|(g, d)| matching::class_ap(&context, g, d))
        .collect();
    let per_threshold: Vec<(f64, f64)> = opts
        .iou_thresholds
        .iter()
        .enumerate()
        .map(|(t, &thr)| {
            let column: Vec<(Option<f64>, bool)> = per_class.iter().map(|c| c[t]).collect();
            (thr, mean_ap(opts.protocol, &column))
        })
        .collect();
    let ap = classes
        .iter()
        .zip(&per_class)
        .map(|(name, aps)| (name.clone(), mean_over_thresholds(aps)))
        .collect();
    let map = if per_threshold.is_empty() {
        f64::NAN
    } else {
        per_threshold.iter().map(|(_, m)| m).sum::<f64>() / per_threshold.len() as f64
    };
    DetectionReport {
        map,
        ap,
        per_threshold,
    }
}

/// The dense id of an image name, assigned in order of first appearance.
fn intern<'a>(ids: &mut HashMap<&'a str, usize>, name: &'a str) -> usize {
    let next = ids.len();
    *ids.entry(name).or_insert(next)
}

/// Mean of one class's AP over thresholds; `None` if any is undefined.
fn mean_over_thresholds(aps: &[(Option<f64>, bool)]) -> Option<f64> {
    if aps.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for (ap, _) in aps {
        sum += (*ap)?;
    }
    Some(sum / aps.len() as f64)
}

/// The protocol's mAP over classes.
fn mean_ap(protocol: Protocol, column: &[(Option<f64>, bool)]) -> f64 {
    match protocol {
        Protocol::Devkit | Protocol::DevkitV15 => {
            let mut sum = 0.0;
            for (ap, _) in column {
                sum += ap.unwrap_or(f64::NAN);
            }
            sum / column.len() as f64
        }
        Protocol::Mmrotate { .. } | Protocol::MmrotateV0 { .. } => {
            let counted: Vec<f32> = column
                .iter()
                .filter(|(_, has_gt)| *has_gt)
                .map(|(ap, _)| ap.unwrap_or(0.0) as f32)
                .collect();
            if counted.is_empty() {
                0.0
            } else {
                f64::from(counted.iter().sum::<f32>() / counted.len() as f32)
            }
        }
    }
}
