//! Semantic-segmentation metrics from a streaming confusion matrix, with MMSeg
//! `IoUMetric` semantics and both Potsdam conventions.
//!
//! * Pixels whose ground truth equals the ignore index are skipped.
//! * Values outside `[0, C)` are dropped from the area they fall in, as MMSeg's
//!   `torch.histc` does: a prediction of 9 still counts its pixel in the ground-truth area
//!   (lowering recall and OA), and an out-of-range ground truth (not the ignore index) still
//!   counts the prediction in the predicted area. Both are kept beside the `C×C` matrix.
//! * Areas are summed over all images before any division.
//!
//! Potsdam: the RSP/RVSA style ignores clutter altogether (5 classes, ignore index 5);
//! the GeoSeg style keeps 6 classes, excludes clutter from the means
//! (`exclude_from_mean = [5]`) and counts it in OA. LoveDA and MMSeg's Potsdam use
//! [`reduce_zero_label`].

use rayon::prelude::*;
use serde_json::{json, Map, Value};

/// Largest supported class count (labels are u8; one value stays free for "ignore").
pub const MAX_CLASSES: usize = 254;

/// Pixels per parallel work item.
const CHUNK: usize = 1 << 20;

/// Size of the direct-indexed histogram: a u16 index needs no bounds check.
const HIST: usize = 1 << 16;

/// Errors of the segmentation metrics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegMetricError {
    /// The class count is outside `1..=MAX_CLASSES`.
    #[error("num_classes must be between 1 and {MAX_CLASSES}, got {0}")]
    ClassCount(usize),
    /// Prediction and ground truth differ in size.
    #[error(
        "prediction has {pred} pixels but ground truth has {gt}: give label maps of the same size"
    )]
    SizeMismatch {
        /// Prediction length.
        pred: usize,
        /// Ground-truth length.
        gt: usize,
    },
    /// Two matrices with different class counts were merged.
    #[error("cannot merge a {other}-class confusion matrix into a {this}-class one")]
    MergeMismatch {
        /// Class count of the receiver.
        this: usize,
        /// Class count of the argument.
        other: usize,
    },
}

/// MMSeg's `reduce_zero_label` for one value: 0 → 255, k → k − 1 (255 stays 255).
pub fn reduce_zero_label_value(v: u8) -> u8 {
    match v {
        0 | 255 => 255,
        k => k - 1,
    }
}

/// Applies [`reduce_zero_label_value`] to a label map in place.
pub fn reduce_zero_label(labels: &mut [u8]) {
    for v in labels {
        *v = reduce_zero_label_value(*v);
    }
}

/// Pixel counts by (ground truth, prediction), rows = ground truth, columns = prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    num_classes: usize,
    /// `C×C`, row-major.
    counts: Vec<u64>,
    /// Per gt class: pixels whose prediction was outside `[0, C)`.
    gt_with_invalid_pred: Vec<u64>,
    /// Per predicted class: pixels whose ground truth was outside `[0, C)` (not ignored).
    pred_with_invalid_gt: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `num_classes` classes (1..=[`MAX_CLASSES`]).
    pub fn new(num_classes: usize) -> Result<Self, SegMetricError> {
        if !(1..=MAX_CLASSES).contains(&num_classes) {
            return Err(SegMetricError::ClassCount(num_classes));
        }
        Ok(Self {
            num_classes,
            counts: vec![0; num_classes * num_classes],
            gt_with_invalid_pred: vec![0; num_classes],
            pred_with_invalid_gt: vec![0; num_classes],
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Pixels with ground truth `gt` predicted as `pred` (0 outside the matrix).
    pub fn get(&self, gt: usize, pred: usize) -> u64 {
        if gt < self.num_classes && pred < self.num_classes {
            self.counts[gt * self.num_classes + pred]
        } else {
            0
        }
    }

    /// Adds one image (or any pair of equally long label maps).
    pub fn accumulate(
        &mut self,
        pred: &[u8],
        gt: &[u8],
        ignore_index: Option<u8>,
    ) -> Result<(), SegMetricError> {
        if pred.len() != gt.len() {
            return Err(SegMetricError::SizeMismatch {
                pred: pred.len(),
                gt: gt.len(),
            });
        }
        let table = LabelTable::new(self.num_classes, ignore_index);
        let totals = pred
            .par_chunks(CHUNK)
            .zip(gt.par_chunks(CHUNK))
            .fold(
                || Histogram::new(&table),
                |mut h, (p, g)| {
                    h.add(&table, p, g);
                    h
                },
            )
            .map(|h| h.totals)
            .reduce(
                || vec![0u64; table.rows * table.cols],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let (c, cols) = (self.num_classes, table.cols);
        for g in 0..c {
            for p in 0..c {
                self.counts[g * c + p] += totals[g * cols + p];
            }
            self.gt_with_invalid_pred[g] += totals[g * cols + c];
            self.pred_with_invalid_gt[g] += totals[c * cols + g];
        }
        Ok(())
    }

    /// Adds the counts of `other` (same class count).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<(), SegMetricError> {
        if other.num_classes != self.num_classes {
            return Err(SegMetricError::MergeMismatch {
                this: self.num_classes,
                other: other.num_classes,
            });
        }
        let add = |a: &mut [u64], b: &[u64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.counts, &other.counts);
        add(&mut self.gt_with_invalid_pred, &other.gt_with_invalid_pred);
        add(&mut self.pred_with_invalid_gt, &other.pred_with_invalid_gt);
        Ok(())
    }

    /// Per class: correctly predicted pixels (MMSeg `area_intersect`).
    pub fn area_intersect(&self) -> Vec<u64> {
        (0..self.num_classes).map(|k| self.get(k, k)).collect()
    }

    /// Per class: predicted pixels (MMSeg `area_pred_label`).
    pub fn area_pred(&self) -> Vec<u64> {
        (0..self.num_classes)
            .map(|p| {
                (0..self.num_classes).map(|g| self.get(g, p)).sum::<u64>()
                    + self.pred_with_invalid_gt[p]
            })
            .collect()
    }

    /// Per class: ground-truth pixels (MMSeg `area_label`).
    pub fn area_label(&self) -> Vec<u64> {
        (0..self.num_classes)
            .map(|g| {
                (0..self.num_classes).map(|p| self.get(g, p)).sum::<u64>()
                    + self.gt_with_invalid_pred[g]
            })
            .collect()
    }

    /// Scores, with the classes in `exclude_from_mean` left out of the means (not of OA).
    pub fn report(&self, exclude_from_mean: &[usize]) -> SegReport {
        let (inter, pred, label) = (self.area_intersect(), self.area_pred(), self.area_label());
        let ratio = |a: u64, b: u64| a as f64 / b as f64;
        let mut r = SegReport::default();
        for k in 0..self.num_classes {
            let (i, p, l) = (inter[k], pred[k], label[k]);
            let precision = ratio(i, p);
            let recall = ratio(i, l);
            r.iou.push(ratio(i, p + l - i));
            r.precision.push(precision);
            r.recall.push(recall);
            r.fscore
                .push(2.0 * precision * recall / (precision + recall));
            r.f1_standard.push(ratio(2 * i, p + l));
        }
        r.oa = ratio(inter.iter().sum(), label.iter().sum());
        let included: Vec<usize> = (0..self.num_classes)
            .filter(|k| !exclude_from_mean.contains(k))
            .collect();
        let mean = |v: &[f64]| nanmean(included.iter().map(|&k| v[k]));
        r.miou = mean(&r.iou);
        r.mf1 = mean(&r.fscore);
        r.mf1_standard = mean(&r.f1_standard);
        r.mprecision = mean(&r.precision);
        r.mrecall = mean(&r.recall);
        r
    }
}

/// NumPy `nanmean`: mean of the non-NaN values, NaN if there are none.
fn nanmean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// Segmentation scores per class and their means. NaN marks 0/0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegReport {
    /// IoU `I/(pred + label − I)`.
    pub iou: Vec<f64>,
    /// Precision `I/pred`.
    pub precision: Vec<f64>,
    /// Recall (MMSeg `Acc`) `I/label`.
    pub recall: Vec<f64>,
    /// MMSeg `Fscore` `2PR/(P+R)`: NaN when P or R is NaN and also when TP = 0.
    pub fscore: Vec<f64>,
    /// Standard F1 `2TP/(2TP+FP+FN)` (= Dice): 0 when TP = 0, NaN only with no pixels.
    pub f1_standard: Vec<f64>,
    /// Overall accuracy (MMSeg `aAcc`): `ΣI/Σlabel` over all classes.
    pub oa: f64,
    /// NaN-mean IoU over the included classes.
    pub miou: f64,
    /// NaN-mean MMSeg F-score over the included classes.
    pub mf1: f64,
    /// NaN-mean standard F1 over the included classes.
    pub mf1_standard: f64,
    /// NaN-mean precision over the included classes.
    pub mprecision: f64,
    /// NaN-mean recall over the included classes.
    pub mrecall: f64,
}

impl SegReport {
    /// The final metrics of a segmentation evaluation as stages report them: `miou`, `oa`,
    /// `mf1`, `iou.<class>` (classes named by `class_names`, in index order) and `images`.
    pub fn stage_metrics(
        &self,
        class_names: &[String],
        images: usize,
    ) -> std::collections::BTreeMap<String, f64> {
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("miou".to_string(), self.miou);
        metrics.insert("oa".to_string(), self.oa);
        metrics.insert("mf1".to_string(), self.mf1);
        for (name, iou) in class_names.iter().zip(&self.iou) {
            metrics.insert(format!("iou.{name}"), *iou);
        }
        metrics.insert("images".to_string(), images as f64);
        metrics
    }

    /// The stable JSON `{"miou","mf1","oa","iou":{..},"f1":{..}}` keyed by class name
    /// (`f1` is the MMSeg F-score); NaN becomes `null`. Classes without a name are keyed
    /// by their index.
    pub fn to_json(&self, class_names: &[String]) -> Value {
        let keyed = |values: &[f64]| -> Value {
            let map: Map<String, Value> = values
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    let name = class_names.get(k).cloned().unwrap_or_else(|| k.to_string());
                    (name, Value::from(v))
                })
                .collect();
            Value::Object(map)
        };
        json!({
            "miou": Value::from(self.miou),
            "mf1": Value::from(self.mf1),
            "oa": Value::from(self.oa),
            "iou": keyed(&self.iou),
            "f1": keyed(&self.fscore),
        })
    }
}

/// Maps label values to histogram rows (gt) and columns (pred): valid classes keep their
/// value, anything else goes to the "invalid" bin `C`, ignored gt to row `C + 1`.
struct LabelTable {
    rows: usize,
    cols: usize,
    /// Row offset (`row · cols`) per gt value.
    gt_offset: [u16; 256],
    /// Column per pred value.
    pred_col: [u16; 256],
}

impl LabelTable {
    fn new(num_classes: usize, ignore_index: Option<u8>) -> Self {
        let cols = num_classes + 1;
        let rows = num_classes + 2;
        let mut gt_offset = [0u16; 256];
        let mut pred_col = [0u16; 256];
        for v in 0..256usize {
            let bin = v.min(num_classes);
            let row = if ignore_index == Some(v as u8) {
                num_classes + 1
            } else {
                bin
            };
            // rows · cols ≤ 256 · 255 < 2^16, checked by `ConfusionMatrix::new`.
            gt_offset[v] = (row * cols) as u16;
            pred_col[v] = bin as u16;
        }
        Self {
            rows,
            cols,
            gt_offset,
            pred_col,
        }
    }
}

/// Four interleaved direct-indexed u32 histograms (so equal consecutive pixels do not
/// serialise on one counter), flushed into u64 totals after each chunk.
struct Histogram {
    lanes: Vec<Box<[u32; HIST]>>,
    totals: Vec<u64>,
}

impl Histogram {
    fn new(table: &LabelTable) -> Self {
        let lane = || -> Box<[u32; HIST]> {
            vec![0u32; HIST]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("the vector has exactly HIST elements"))
        };
        Self {
            lanes: (0..4).map(|_| lane()).collect(),
            totals: vec![0; table.rows * table.cols],
        }
    }

    /// Counts one chunk (at most `CHUNK` < 2^32 pixels, so u32 lanes cannot overflow).
    fn add(&mut self, table: &LabelTable, pred: &[u8], gt: &[u8]) {
        let index =
            |p: u8, g: u8| table.gt_offset[g as usize].wrapping_add(table.pred_col[p as usize]);
        let [l0, l1, l2, l3] = &mut self.lanes[..] else {
            unreachable!("four lanes are created in `new`")
        };
        let mut p4 = pred.chunks_exact(4);
        let mut g4 = gt.chunks_exact(4);
        for (p, g) in (&mut p4).zip(&mut g4) {
            l0[index(p[0], g[0]) as usize] += 1;
            l1[index(p[1], g[1]) as usize] += 1;
            l2[index(p[2], g[2]) as usize] += 1;
            l3[index(p[3], g[3]) as usize] += 1;
        }
        for (&p, &g) in p4.remainder().iter().zip(g4.remainder()) {
            l0[index(p, g) as usize] += 1;
        }
        for (i, total) in self.totals.iter_mut().enumerate() {
            for lane in self.lanes.iter_mut() {
                *total += u64::from(lane[i]);
                lane[i] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_out_of_range_values_like_histc() {
        let mut cm = ConfusionMatrix::new(3).unwrap();
        let gt = [0, 1, 2, 255, 7, 1];
        let pred = [0, 9, 2, 1, 1, 1];
        cm.accumulate(&pred, &gt, Some(255)).unwrap();
        assert_eq!(cm.area_intersect(), vec![1, 1, 1]);
        assert_eq!(cm.area_label(), vec![1, 2, 1]);
        // gt 7 is out of range but not ignored: its prediction (1) still counts.
        assert_eq!(cm.area_pred(), vec![1, 2, 1]);
        let r = cm.report(&[]);
        assert_eq!(r.oa, 0.75);
        assert_eq!(r.iou[1], 1.0 / 3.0);
    }

    #[test]
    fn fscore_is_nan_without_true_positives_but_f1_is_zero() {
        let mut cm = ConfusionMatrix::new(2).unwrap();
        cm.accumulate(&[1, 0], &[0, 1], None).unwrap();
        let r = cm.report(&[]);
        assert!(r.fscore[0].is_nan());
        assert_eq!(r.f1_standard[0], 0.0);
        assert!(r.mf1.is_nan());
        assert_eq!(r.miou, 0.0);
    }

    #[test]
    fn chunked_accumulation_matches_a_plain_count() {
        let n = CHUNK * 2 + 13;
        let gt: Vec<u8> = (0..n).map(|i| ((i * 7 + i / 5) % 6) as u8).collect();
        let pred: Vec<u8> = (0..n).map(|i| ((i * 3 + i / 11) % 7) as u8).collect();
        let mut cm = ConfusionMatrix::new(6).unwrap();
        cm.accumulate(&pred, &gt, Some(5)).unwrap();
        let mut plain = vec![0u64; 36];
        for (&p, &g) in pred.iter().zip(&gt) {
            if g != 5 && p < 6 {
                plain[g as usize * 6 + p as usize] += 1;
            }
        }
        assert_eq!(cm.counts, plain);
        let mut twice = cm.clone();
        twice.merge(&cm).unwrap();
        assert_eq!(twice.get(0, 0), 2 * cm.get(0, 0));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(ConfusionMatrix::new(0).is_err());
        assert!(ConfusionMatrix::new(300).is_err());
        let mut cm = ConfusionMatrix::new(2).unwrap();
        assert!(cm.accumulate(&[0], &[0, 1], None).is_err());
        assert!(cm.merge(&ConfusionMatrix::new(3).unwrap()).is_err());
        assert_eq!(reduce_zero_label_value(0), 255);
        assert_eq!(reduce_zero_label_value(3), 2);
    }
}
