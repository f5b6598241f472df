//! Per-class matching of score-sorted detections to ground truth, protocol by protocol.

use std::collections::HashMap;

use rayon::prelude::*;

use super::ap::{devkit_ap, mmrotate_ap, Outcome};
use super::{ApMetric, Protocol};
use crate::geometry::polygon::{ClipScratch, PreparedPolygon};
use crate::geometry::{Quad, RotatedBox};

/// A ground-truth object of the class being evaluated.
#[derive(Debug, Clone, Copy)]
pub(super) struct GtRef<'a> {
    pub(super) image: usize,
    pub(super) poly: &'a Quad,
    pub(super) difficult: bool,
}

/// A detection of the class being evaluated.
#[derive(Debug, Clone, Copy)]
pub(super) struct DetRef<'a> {
    pub(super) image: usize,
    pub(super) score: f64,
    pub(super) poly: &'a Quad,
}

/// What every class evaluation shares.
pub(super) struct Context<'a> {
    pub(super) protocol: Protocol,
    pub(super) metric: ApMetric,
    pub(super) thresholds: &'a [f64],
    /// Per image id: whether it has at least one non-difficult object of any class.
    pub(super) images_with_normal_gt: &'a [bool],
}

/// The protocol's choices, spelled out.
struct Rules {
    /// Compare min-area rectangles (MMRotate's `poly2obb`) instead of raw polygons.
    min_area_rect: bool,
    /// Match on `IoU > thr` (devkit) instead of `IoU ≥ thr` in f32 (MMRotate).
    strict: bool,
    /// Difficult objects are ignored rather than counted.
    ignore_difficult: bool,
    /// MMRotate 1.x: ignored objects vanish from images with no non-ignored object.
    drop_ignored_without_normal: bool,
}

impl Rules {
    fn of(protocol: Protocol) -> Rules {
        match protocol {
            Protocol::Devkit => Rules {
                min_area_rect: false,
                strict: true,
                ignore_difficult: true,
                drop_ignored_without_normal: false,
            },
            Protocol::DevkitV15 => Rules {
                min_area_rect: false,
                strict: true,
                ignore_difficult: false,
                drop_ignored_without_normal: false,
            },
            Protocol::Mmrotate { ignore_difficult } => Rules {
                min_area_rect: true,
                strict: false,
                ignore_difficult,
                drop_ignored_without_normal: ignore_difficult,
            },
            Protocol::MmrotateV0 { ignore_difficult } => Rules {
                min_area_rect: true,
                strict: false,
                ignore_difficult,
                drop_ignored_without_normal: false,
            },
        }
    }

    fn prepare(&self, poly: &Quad) -> Option<PreparedPolygon> {
        if self.min_area_rect {
            RotatedBox::from_polygon(poly).and_then(|b| PreparedPolygon::new(&b.corners()))
        } else {
            PreparedPolygon::new(poly)
        }
    }

    /// The IoU as the reference sees it: f64, or rounded to f32 like mmcv's kernel output.
    fn observed_iou(&self, iou: f64) -> f64 {
        if self.strict {
            iou
        } else {
            f64::from(iou as f32)
        }
    }

    fn passes(&self, iou: f64, thr: f64) -> bool {
        if self.strict {
            iou > thr
        } else {
            (iou as f32) >= (thr as f32)
        }
    }
}

/// A candidate ground truth prepared for matching.
struct Candidate {
    shape: Option<PreparedPolygon>,
    ignored: bool,
}

/// Marks images that hold at least one non-difficult object of any evaluated class.
pub(super) fn images_with_normal_gt(gts_by_class: &[Vec<GtRef>], n_images: usize) -> Vec<bool> {
    let mut has = vec![false; n_images];
    for gt in gts_by_class.iter().flatten() {
        if !gt.difficult {
            has[gt.image] = true;
        }
    }
    has
}

/// AP of one class for each threshold, with whether the class enters the protocol's mean.
pub(super) fn class_ap(ctx: &Context, gts: &[GtRef], dets: &[DetRef]) -> Vec<(Option<f64>, bool)> {
    let rules = Rules::of(ctx.protocol);
    let (candidates, by_image) = candidates(&rules, ctx, gts);
    let num_counted = candidates.iter().filter(|c| !c.ignored).count();

    let mut order: Vec<usize> = (0..dets.len()).collect();
    let rank = |s: f64| if s.is_nan() { f64::NEG_INFINITY } else { s };
    order.sort_by(|&a, &b| rank(dets[b].score).total_cmp(&rank(dets[a].score)));

    // Best ground truth of each sorted det: (IoU as the reference sees it, candidate).
    let best: Vec<Option<(f64, usize)>> = order
        .par_iter()
        .map_init(ClipScratch::default, |scratch, &d| {
            let det = &dets[d];
            let members = by_image.get(&det.image)?;
            let shape = rules.prepare(det.poly);
            let mut best: Option<(f64, usize)> = None;
            for &j in members {
                let iou = match (&shape, &candidates[j].shape) {
                    (Some(a), Some(b)) => rules.observed_iou(a.iou(b, scratch)),
                    _ => 0.0,
                };
                if best.is_none_or(|(b, _)| iou > b) {
                    best = Some((iou, j));
                }
            }
            best
        })
        .collect();

    ctx.thresholds
        .iter()
        .map(|&thr| {
            let outcomes = match_outcomes(&rules, &candidates, &best, thr);
            match ctx.protocol {
                Protocol::Devkit | Protocol::DevkitV15 => {
                    if dets.is_empty() {
                        // The devkit crashes on an empty detection file: AP undefined.
                        (None, true)
                    } else {
                        let ap = devkit_ap(&outcomes, num_counted, ctx.metric);
                        (Some(ap).filter(|v| !v.is_nan()), true)
                    }
                }
                Protocol::Mmrotate { .. } | Protocol::MmrotateV0 { .. } => {
                    let ap = mmrotate_ap(&outcomes, num_counted, ctx.metric);
                    (Some(f64::from(ap)), num_counted > 0)
                }
            }
        })
        .collect()
}

/// Candidates of the class and, per image, their indices in argmax order: annotation
/// order, with ignored objects after the others when they are ignored (MMRotate stacks
/// `bboxes_ignore` below `bboxes`; the devkit keeps the file order either way).
fn candidates(
    rules: &Rules,
    ctx: &Context,
    gts: &[GtRef],
) -> (Vec<Candidate>, HashMap<usize, Vec<usize>>) {
    let mut list = Vec::with_capacity(gts.len());
    let mut by_image: HashMap<usize, Vec<usize>> = HashMap::new();
    let ignored_last = rules.ignore_difficult && rules.min_area_rect;
    let passes: &[bool] = if ignored_last {
        &[false, true]
    } else {
        &[false]
    };
    for &second_pass in passes {
        for gt in gts {
            let ignored = rules.ignore_difficult && gt.difficult;
            if ignored_last && ignored != second_pass {
                continue;
            }
            if ignored && rules.drop_ignored_without_normal && !ctx.images_with_normal_gt[gt.image]
            {
                continue;
            }
            by_image.entry(gt.image).or_default().push(list.len());
            list.push(Candidate {
                shape: rules.prepare(gt.poly),
                ignored,
            });
        }
    }
    (list, by_image)
}

/// Greedy matching in score order at one threshold; no fallback to a second-best target.
fn match_outcomes(
    rules: &Rules,
    candidates: &[Candidate],
    best: &[Option<(f64, usize)>],
    thr: f64,
) -> Vec<Outcome> {
    let mut covered = vec![false; candidates.len()];
    best.iter()
        .map(|b| match *b {
            Some((iou, j)) if rules.passes(iou, thr) => {
                if candidates[j].ignored {
                    Outcome::Ignored
                } else if covered[j] {
                    Outcome::FalsePositive
                } else {
                    covered[j] = true;
                    Outcome::TruePositive
                }
            }
            _ => Outcome::FalsePositive,
        })
        .collect()
}
