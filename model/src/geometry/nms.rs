//! Rotated non-maximum suppression.

use super::polygon::{ClipScratch, PreparedPolygon};
use super::rotated_box::RotatedBox;

/// Indices of the boxes kept by greedy NMS, in descending score order (ties keep input
/// order). A box is suppressed when its IoU with a kept box is greater than `iou_thr`, as in
/// mmcv `nms_rotated`. NaN scores rank last; degenerate boxes suppress nothing. Lengths of
/// `boxes` and `scores` beyond the shorter one are ignored.
pub fn rotated_nms(boxes: &[RotatedBox], scores: &[f64], iou_thr: f64) -> Vec<usize> {
    let n = boxes.len().min(scores.len());
    nms_over((0..n).collect(), boxes, scores, iou_thr)
}

/// NMS run separately within each class, merged in descending score order (ties keep
/// input order). Entries beyond the shortest of the three slices are ignored.
pub fn rotated_nms_per_class(
    boxes: &[RotatedBox],
    scores: &[f64],
    classes: &[usize],
    iou_thr: f64,
) -> Vec<usize> {
    let n = boxes.len().min(scores.len()).min(classes.len());
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &class) in classes.iter().enumerate().take(n) {
        by_class.entry(class).or_default().push(i);
    }
    let mut keep: Vec<usize> = by_class
        .into_values()
        .flat_map(|members| nms_over(members, boxes, scores, iou_thr))
        .collect();
    sort_by_score(&mut keep, scores);
    keep
}

fn rank_key(score: f64) -> f64 {
    if score.is_nan() {
        f64::NEG_INFINITY
    } else {
        score
    }
}

fn sort_by_score(indices: &mut [usize], scores: &[f64]) {
    indices.sort_by(|&a, &b| {
        rank_key(scores[b])
            .total_cmp(&rank_key(scores[a]))
            .then(a.cmp(&b))
    });
}

fn nms_over(
    mut order: Vec<usize>,
    boxes: &[RotatedBox],
    scores: &[f64],
    iou_thr: f64,
) -> Vec<usize> {
    sort_by_score(&mut order, scores);
    let prepared: Vec<Option<PreparedPolygon>> = order
        .iter()
        .map(|&i| PreparedPolygon::new(&boxes[i].corners()))
        .collect();
    let mut scratch = ClipScratch::default();
    let mut kept: Vec<usize> = Vec::new();
    let mut keep = Vec::new();
    for (pos, &idx) in order.iter().enumerate() {
        let suppressed = prepared[pos].as_ref().is_some_and(|cand| {
            kept.iter().any(|&k| {
                // `iou` starts with the bounding-box prefilter.
                prepared[k]
                    .as_ref()
                    .is_some_and(|kb| cand.iou(kb, &mut scratch) > iou_thr)
            })
        });
        if !suppressed {
            kept.push(pos);
            keep.push(idx);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_overlaps_and_keeps_score_order() {
        let boxes = [
            RotatedBox::new(0.0, 0.0, 10.0, 10.0, 0.0),
            RotatedBox::new(1.0, 0.0, 10.0, 10.0, 0.0),
            RotatedBox::new(50.0, 0.0, 10.0, 10.0, 0.3),
        ];
        assert_eq!(rotated_nms(&boxes, &[0.5, 0.9, 0.7], 0.5), vec![1, 2]);
        assert_eq!(rotated_nms(&boxes, &[0.5, 0.9, 0.7], 0.95), vec![1, 2, 0]);
        assert_eq!(
            rotated_nms_per_class(&boxes, &[0.5, 0.9, 0.7], &[0, 1, 0], 0.5),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn ties_are_stable_and_nan_ranks_last() {
        let b = RotatedBox::new(0.0, 0.0, 10.0, 10.0, 0.0);
        assert_eq!(rotated_nms(&[b, b], &[0.5, 0.5], 0.5), vec![0]);
        assert_eq!(rotated_nms(&[b, b], &[f64::NAN, 0.1], 0.5), vec![1]);
    }
}
