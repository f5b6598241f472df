//! Rotated non-maximum suppression.

use super::polygon::{Aabb, ClipScratch, PreparedPolygon};
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
    per_class(boxes.len(), scores, classes, |members| {
        nms_over(members, boxes, scores, iou_thr)
    })
}

/// Per-class NMS on each rotated box's axis-aligned hull (MMRotate's Oriented R-CNN RPN:
/// `rbox2hbox`, then horizontal `batched_nms` with the feature level as class). IoU of the
/// hulls as in mmcv `nms` (no +1 offset); a box is suppressed when it is greater than
/// `iou_thr`. Same order and truncation rules as [`rotated_nms_per_class`].
pub fn hull_nms_per_class(
    boxes: &[RotatedBox],
    scores: &[f64],
    classes: &[usize],
    iou_thr: f64,
) -> Vec<usize> {
    per_class(boxes.len(), scores, classes, |mut members| {
        sort_by_score(&mut members, scores);
        let hulls: Vec<Aabb> = members
            .iter()
            .map(|&i| Aabb::of(&boxes[i].corners()))
            .collect();
        greedy(&members, |kept, candidate| {
            hull_iou(&hulls[kept], &hulls[candidate]) > iou_thr
        })
    })
}

/// IoU of two axis-aligned boxes (NaN, so suppressing nothing, when both are empty).
fn hull_iou(a: &Aabb, b: &Aabb) -> f64 {
    let side = |axis: usize| (a.max[axis].min(b.max[axis]) - a.min[axis].max(b.min[axis])).max(0.0);
    let area = |h: &Aabb| (h.max[0] - h.min[0]) * (h.max[1] - h.min[1]);
    let inter = side(0) * side(1);
    inter / (area(a) + area(b) - inter)
}

/// Groups the first `n` (at most every slice's length) indices by class, runs `nms` on each
/// group and merges the kept indices in descending score order.
fn per_class(
    n: usize,
    scores: &[f64],
    classes: &[usize],
    nms: impl Fn(Vec<usize>) -> Vec<usize>,
) -> Vec<usize> {
    let n = n.min(scores.len()).min(classes.len());
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &class) in classes.iter().enumerate().take(n) {
        by_class.entry(class).or_default().push(i);
    }
    let mut keep: Vec<usize> = by_class.into_values().flat_map(nms).collect();
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

/// Greedy NMS over `order` (best first): keeps an entry unless `suppresses(kept, candidate)`
/// (positions in `order`) holds for an entry kept before it. Returns the kept entries.
fn greedy(order: &[usize], mut suppresses: impl FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for pos in 0..order.len() {
        if !kept.iter().any(|&k| suppresses(k, pos)) {
            kept.push(pos);
        }
    }
    kept.into_iter().map(|pos| order[pos]).collect()
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
    greedy(&order, |kept, candidate| {
        // `iou` starts with the bounding-box prefilter; degenerate boxes suppress nothing.
        match (&prepared[kept], &prepared[candidate]) {
            (Some(kb), Some(cand)) => cand.iou(kb, &mut scratch) > iou_thr,
            _ => false,
        }
    })
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

    #[test]
    fn hull_nms_compares_enclosing_boxes_within_each_class() {
        // A 10×2 box at 45° has a hull of about 8.5×8.5: its hull overlaps the hull of the
        // same box turned the other way completely, although the boxes themselves only cross.
        let a = RotatedBox::new(0.0, 0.0, 10.0, 2.0, std::f64::consts::FRAC_PI_4);
        let b = RotatedBox::new(0.0, 0.0, 10.0, 2.0, -std::f64::consts::FRAC_PI_4);
        let far = RotatedBox::new(40.0, 0.0, 10.0, 2.0, 0.0);
        let boxes = [a, b, far];
        assert_eq!(
            hull_nms_per_class(&boxes, &[0.9, 0.8, 0.7], &[0, 0, 0], 0.8),
            vec![0, 2]
        );
        assert_eq!(rotated_nms(&boxes, &[0.9, 0.8, 0.7], 0.8), vec![0, 1, 2]);
        // Classes (feature levels) never suppress each other.
        assert_eq!(
            hull_nms_per_class(&boxes, &[0.9, 0.8, 0.7], &[0, 1, 0], 0.8),
            vec![0, 1, 2]
        );
        // IoU exactly at the threshold keeps the box (suppression needs more).
        let left = RotatedBox::new(5.0, 5.0, 10.0, 10.0, 0.0);
        let shifted = RotatedBox::new(10.0, 5.0, 10.0, 10.0, 0.0);
        let third = 50.0 / 150.0;
        assert_eq!(
            hull_nms_per_class(&[left, shifted], &[0.9, 0.8], &[0, 0], third),
            vec![0, 1]
        );
        assert_eq!(
            hull_nms_per_class(&[left, shifted], &[0.9, 0.8], &[0, 0], third - 1e-9),
            vec![0]
        );
    }
}
