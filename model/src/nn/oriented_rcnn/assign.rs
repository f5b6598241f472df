//! RoI head targets: proposals matched to ground truth by rotated IoU, then sampled.

use crate::geometry::{box_iou, RotatedBox};

/// Rotated IoU matrix `[a.len()][b.len()]` (exact polygon IoU, bounding-box prefilter).
pub fn rotated_iou_matrix(a: &[RotatedBox], b: &[RotatedBox]) -> Vec<Vec<f64>> {
    a.iter()
        .map(|x| b.iter().map(|y| box_iou(x, y)).collect())
        .collect()
}

/// Assignment settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAssignSettings {
    /// IoU from which a proposal is foreground.
    pub positive_iou: f64,
    /// IoU below which a proposal is background.
    pub negative_iou: f64,
    /// RoIs sampled per image.
    pub batch: usize,
    /// Largest foreground share of the sample.
    pub positive_fraction: f64,
}

/// A proposal's assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Foreground: index of the matched ground truth.
    Object(usize),
    /// Background.
    Background,
    /// Between the thresholds: not used.
    Ignored,
}

/// Assigns each proposal to its best ground truth (first of equal IoUs).
pub fn assign(
    proposals: &[RotatedBox],
    gts: &[RotatedBox],
    cfg: &RoiAssignSettings,
) -> Vec<Assignment> {
    rotated_iou_matrix(proposals, gts)
        .into_iter()
        .map(|row| {
            let best = row
                .iter()
                .enumerate()
                .fold(None, |acc: Option<(usize, f64)>, (j, &v)| match acc {
                    Some((_, m)) if m >= v => acc,
                    _ => Some((j, v)),
                });
            match best {
                Some((j, v)) if v >= cfg.positive_iou => Assignment::Object(j),
                Some((_, v)) if v >= cfg.negative_iou => Assignment::Ignored,
                _ => Assignment::Background,
            }
        })
        .collect()
}

/// Picks up to `batch·positive_fraction` foreground proposals, then background ones to fill
/// the batch; `order` is a random permutation of the proposal indices. Returns indices.
pub fn sample(assignments: &[Assignment], order: &[usize], cfg: &RoiAssignSettings) -> Vec<usize> {
    let max_pos = (cfg.batch as f64 * cfg.positive_fraction) as usize;
    let mut chosen: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| matches!(assignments[i], Assignment::Object(_)))
        .take(max_pos)
        .collect();
    let fill = cfg.batch - chosen.len();
    chosen.extend(
        order
            .iter()
            .copied()
            .filter(|&i| assignments[i] == Assignment::Background)
            .take(fill),
    );
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RoiAssignSettings {
        RoiAssignSettings {
            positive_iou: 0.5,
            negative_iou: 0.5,
            batch: 4,
            positive_fraction: 0.25,
        }
    }

    #[test]
    fn proposals_match_the_ground_truth_they_overlap_in_rotation() {
        let gts = [
            RotatedBox::new(10.0, 10.0, 20.0, 4.0, 0.0),
            RotatedBox::new(50.0, 50.0, 20.0, 4.0, 0.785),
        ];
        let proposals = [
            RotatedBox::new(10.0, 10.0, 20.0, 4.0, 0.0), // identical to gt 0
            RotatedBox::new(10.0, 10.0, 20.0, 4.0, 1.5), // same centre, crossed: IoU < 0.5
            RotatedBox::new(51.0, 50.0, 20.0, 4.0, 0.785), // shifted along gt 1's axis
            RotatedBox::new(50.0, 50.0, 20.0, 4.0, -0.785), // gt 1's outer box would overlap, the box does not
            RotatedBox::new(90.0, 90.0, 5.0, 5.0, 0.0),
        ];
        let got = assign(&proposals, &gts, &cfg());
        assert_eq!(
            got,
            vec![
                Assignment::Object(0),
                Assignment::Background,
                Assignment::Object(1),
                Assignment::Background,
                Assignment::Background
            ]
        );
        let picked = sample(&got, &[4, 3, 2, 1, 0], &cfg());
        // One foreground at most (4 × 0.25), the first in the order, then background.
        assert_eq!(picked, vec![2, 4, 3, 1]);
    }

    #[test]
    fn no_ground_truth_makes_everything_background() {
        let got = assign(&[RotatedBox::new(1.0, 1.0, 2.0, 2.0, 0.0)], &[], &cfg());
        assert_eq!(got, vec![Assignment::Background]);
    }
}
