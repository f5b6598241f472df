//! Oriented RPN: objectness and midpoint-offset regression per anchor, its training targets
//! and losses, and proposal decoding with rotated NMS.

use tch::nn::{self, Module};
use tch::{Kind, Reduction, Tensor};

use super::anchors::hbox_iou;
use super::coding::{decode_midpoint, encode_midpoint, midpoint_form, tensor_to_boxes};
use super::ImageTargets;
use crate::geometry::hull_nms_per_class;
use crate::shapes::RPN_DELTAS;

/// Raw RPN outputs of one level for the batch.
#[derive(Debug)]
pub struct RpnLevel {
    /// Objectness logits `[B, N]` (N = H·W·A, anchor order of [`super::anchors::level_anchors`]).
    pub logits: Tensor,
    /// Midpoint-offset deltas `[B, N, 6]`.
    pub deltas: Tensor,
}

/// The RPN head shared by all levels: 3×3 conv + ReLU, then 1×1 objectness and deltas.
#[derive(Debug)]
pub struct RpnHead {
    conv: nn::Conv2D,
    cls: nn::Conv2D,
    reg: nn::Conv2D,
    num_anchors: i64,
}

fn small_init(path: nn::Path, cin: i64, cout: i64, k: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        padding: k / 2,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.01,
        },
        ..Default::default()
    };
    nn::conv2d(path, cin, cout, k, config)
}

impl RpnHead {
    /// A head for `channels`-wide features and `num_anchors` anchors per cell.
    pub fn new(path: &nn::Path, channels: i64, num_anchors: i64) -> Self {
        RpnHead {
            conv: small_init(path / "conv", channels, channels, 3),
            cls: small_init(path / "cls", channels, num_anchors, 1),
            reg: small_init(path / "reg", channels, num_anchors * RPN_DELTAS as i64, 1),
            num_anchors,
        }
    }

    /// Outputs for every level.
    pub fn forward(&self, features: &[Tensor]) -> Vec<RpnLevel> {
        features
            .iter()
            .map(|f| {
                let (b, _, h, w) = f.size4().expect("features are [B, C, H, W]");
                let x = self.conv.forward(f).relu();
                let logits = self.cls.forward(&x).permute([0, 2, 3, 1]).reshape([b, -1]);
                let deltas = self
                    .reg
                    .forward(&x)
                    .reshape([b, self.num_anchors, RPN_DELTAS as i64, h, w])
                    .permute([0, 3, 4, 1, 2])
                    .reshape([b, -1, 6]);
                RpnLevel { logits, deltas }
            })
            .collect()
    }
}

/// RPN training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpnTraining {
    /// Anchors sampled per image.
    pub batch: i64,
    /// Largest positive share of the sample.
    pub positive_fraction: f64,
    /// IoU from which an anchor is positive.
    pub positive_iou: f64,
    /// IoU below which an anchor is negative.
    pub negative_iou: f64,
}

/// Anchor labels `[N]` (1 positive, 0 negative, −1 ignored) and the matched ground truth
/// `[N]`, from the horizontal IoU of `anchors` with the ground truths' outer boxes `gt_hboxes`.
/// Each ground truth's best anchors are positive when their IoU is at least `negative_iou`.
pub fn assign_anchors(anchors: &Tensor, gt_hboxes: &Tensor, cfg: &RpnTraining) -> (Tensor, Tensor) {
    let n = anchors.size()[0];
    let device = anchors.device();
    if gt_hboxes.size()[0] == 0 {
        return (
            Tensor::zeros([n], (Kind::Int64, device)),
            Tensor::zeros([n], (Kind::Int64, device)),
        );
    }
    let iou = hbox_iou(anchors, gt_hboxes);
    let (best, matched) = iou.max_dim(1, false);
    let labels = Tensor::full([n], -1, (Kind::Int64, device));
    let labels = labels.masked_fill(&best.lt(cfg.negative_iou), 0);
    let labels = labels.masked_fill(&best.ge(cfg.positive_iou), 1);
    let (gt_best, _) = iou.max_dim(0, true);
    let is_best = iou
        .eq_tensor(&gt_best)
        .logical_and(&gt_best.ge(cfg.negative_iou));
    let any_best = is_best.any_dim(1, false);
    let matched = is_best
        .to_kind(Kind::Int64)
        .argmax(1, false)
        .where_self(&any_best, &matched);
    (labels.masked_fill(&any_best, 1), matched)
}

fn shuffled_take(mask: &Tensor, limit: i64) -> Tensor {
    let idx = mask.nonzero().reshape([-1]);
    let n = idx.size()[0];
    let order = Tensor::randperm(n, (Kind::Int64, idx.device()));
    idx.index_select(0, &order.narrow(0, 0, limit.min(n)))
}

/// Objectness (BCE) and regression (smooth L1, β = 1/9) losses, each averaged over the
/// sampled anchors of the batch.
pub fn rpn_losses(
    levels: &[RpnLevel],
    anchors: &Tensor,
    targets: &[ImageTargets],
    cfg: &RpnTraining,
) -> (Tensor, Tensor) {
    let logits = Tensor::cat(&levels.iter().map(|l| &l.logits).collect::<Vec<_>>(), 1);
    let deltas = Tensor::cat(&levels.iter().map(|l| &l.deltas).collect::<Vec<_>>(), 1);
    let device = anchors.device();
    let mut cls_sum = Tensor::zeros([], (Kind::Float, device));
    let mut reg_sum = Tensor::zeros([], (Kind::Float, device));
    let mut sampled = 0i64;
    for (b, target) in targets.iter().enumerate() {
        let forms: Vec<f32> = target
            .boxes
            .iter()
            .flat_map(|g| midpoint_form(g).map(|v| v as f32))
            .collect();
        let forms = Tensor::from_slice(&forms)
            .reshape([-1, 6])
            .to_device(device);
        let (cx, cy, w, h) = (
            forms.select(1, 0),
            forms.select(1, 1),
            forms.select(1, 2),
            forms.select(1, 3),
        );
        let hboxes = Tensor::stack(
            &[
                &cx - &w * 0.5,
                &cy - &h * 0.5,
                &cx + &w * 0.5,
                &cy + &h * 0.5,
            ],
            1,
        );
        let (labels, matched) = assign_anchors(anchors, &hboxes, cfg);
        let max_pos = (cfg.batch as f64 * cfg.positive_fraction) as i64;
        let pos = shuffled_take(&labels.eq(1), max_pos);
        let num_pos = pos.size()[0];
        let neg = shuffled_take(&labels.eq(0), cfg.batch - num_pos);
        let chosen = Tensor::cat(&[&pos, &neg], 0);
        let wanted = Tensor::cat(
            &[
                Tensor::ones([num_pos], (Kind::Float, device)),
                Tensor::zeros([neg.size()[0]], (Kind::Float, device)),
            ],
            0,
        );
        let image_logits = logits.get(b as i64).index_select(0, &chosen);
        cls_sum += image_logits.binary_cross_entropy_with_logits::<Tensor>(
            &wanted,
            None,
            None,
            Reduction::Sum,
        );
        if num_pos > 0 {
            let goal = encode_midpoint(
                &anchors.index_select(0, &pos),
                &forms.index_select(0, &matched.index_select(0, &pos)),
            );
            let pred = deltas.get(b as i64).index_select(0, &pos);
            reg_sum += pred.smooth_l1_loss(&goal, Reduction::Sum, 1.0 / 9.0);
        }
        sampled += chosen.size()[0];
    }
    let denom = sampled.max(1) as f64;
    (cls_sum / denom, reg_sum / denom)
}

/// Proposal settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProposalSettings {
    /// Best anchors per level decoded before NMS.
    pub pre_nms: i64,
    /// Proposals kept after NMS.
    pub post_nms: usize,
    /// IoU threshold of the NMS on the proposals' axis-aligned hulls, per level.
    pub nms_iou: f64,
    /// Smallest side kept, in pixels.
    pub min_size: f64,
}

/// Proposals `[P, 5]` (detached, best first) of image `b`: the best `pre_nms` anchors of each
/// level decoded, small boxes dropped, NMS on their axis-aligned hulls within each level (as
/// MMRotate's Oriented R-CNN RPN does), the best `post_nms` kept.
pub fn proposals(
    levels: &[RpnLevel],
    anchors: &[Tensor],
    b: i64,
    cfg: &ProposalSettings,
) -> Tensor {
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut level_ids = Vec::new();
    for (index, (level, level_anchors)) in levels.iter().zip(anchors).enumerate() {
        let logits = level.logits.get(b).detach();
        let k = cfg.pre_nms.min(logits.size()[0]);
        let (top, idx) = logits.topk(k, 0, true, true);
        let decoded = decode_midpoint(
            &level_anchors.index_select(0, &idx),
            &level.deltas.get(b).detach().index_select(0, &idx),
        );
        boxes.push(decoded);
        scores.push(top.sigmoid());
        level_ids.extend(std::iter::repeat_n(index, k as usize));
    }
    let boxes = Tensor::cat(&boxes, 0);
    let scores = Tensor::cat(&scores, 0);
    let big = boxes
        .select(1, 2)
        .gt(cfg.min_size)
        .logical_and(&boxes.select(1, 3).gt(cfg.min_size))
        .nonzero()
        .reshape([-1]);
    let boxes = boxes.index_select(0, &big);
    let scores = scores.index_select(0, &big);
    let score_list: Vec<f64> =
        Vec::<f32>::try_from(scores.to_device(tch::Device::Cpu).contiguous())
            .unwrap_or_default()
            .into_iter()
            .map(f64::from)
            .collect();
    let big_list = Vec::<i64>::try_from(big.to_device(tch::Device::Cpu)).unwrap_or_default();
    let levels_kept: Vec<usize> = big_list.iter().map(|&i| level_ids[i as usize]).collect();
    let mut keep = hull_nms_per_class(
        &tensor_to_boxes(&boxes),
        &score_list,
        &levels_kept,
        cfg.nms_iou,
    );
    keep.truncate(cfg.post_nms);
    let keep: Vec<i64> = keep.into_iter().map(|i| i as i64).collect();
    boxes.index_select(0, &Tensor::from_slice(&keep).to_device(boxes.device()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn anchors_are_labelled_by_overlap_and_every_box_gets_its_best_anchor() {
        let anchors = Tensor::from_slice(&[
            0.0f32, 0.0, 10.0, 10.0, // exact match of gt 0
            0.0, 0.0, 10.0, 12.0, // IoU 0.83 with gt 0
            50.0, 50.0, 60.0, 60.0, // far from everything
            20.0, 20.0, 30.0, 40.0, // IoU 0.5 with gt 1: its best, so positive
        ])
        .reshape([4, 4]);
        let gts =
            Tensor::from_slice(&[0.0f32, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0, 30.0]).reshape([2, 4]);
        let cfg = RpnTraining {
            batch: 256,
            positive_fraction: 0.5,
            positive_iou: 0.7,
            negative_iou: 0.3,
        };
        let (labels, matched) = assign_anchors(&anchors, &gts, &cfg);
        assert_eq!(Vec::<i64>::try_from(labels).unwrap(), vec![1, 1, 0, 1]);
        let matched = Vec::<i64>::try_from(matched).unwrap();
        assert_eq!((matched[0], matched[1], matched[3]), (0, 0, 1));
        let (none, _) = assign_anchors(
            &anchors,
            &Tensor::zeros([0, 4], (Kind::Float, Device::Cpu)),
            &cfg,
        );
        assert_eq!(Vec::<i64>::try_from(none).unwrap(), vec![0; 4]);
    }
}
