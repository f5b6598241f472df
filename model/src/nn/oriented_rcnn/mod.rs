//! Oriented R-CNN on the ViTDet backbone: a per-level neck, the oriented RPN (midpoint
//! offsets), rotated RoI Align and a RoI head with rotated deltas (`le90` angles).
//!
//! Training ([`OrientedRcnn::losses`]) samples anchors and RoIs, matching RoIs to ground
//! truth by rotated IoU; inference ([`OrientedRcnn::predict`]) keeps the best proposals,
//! scores them and applies per-class rotated NMS.

pub mod anchors;
pub mod assign;
pub mod coding;
pub mod head;
pub mod inference;
pub mod roi_align;
pub mod rpn;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Reduction, Tensor};

use self::assign::{assign, sample, Assignment, RoiAssignSettings};
use self::coding::{boxes_to_tensor, decode_deltas, encode_deltas, tensor_to_boxes};
use self::head::RoiHead;
use self::inference::{postprocess, Detection, PostSettings};
use self::roi_align::{rotated_roi_align, RoiAlignSettings};
use self::rpn::{proposals, rpn_losses, ProposalSettings, RpnHead, RpnLevel, RpnTraining};
use super::vitdet::{VitDetBackbone, VitDetConfig};
use crate::arch::VitConfig;
use crate::geometry::RotatedBox;
use crate::params::detector::DetectorParams;
use crate::shapes::{ANCHOR_RATIOS, ROI_SIZE};

/// Ground truth of one training image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageTargets {
    /// Oriented boxes in image pixels.
    pub boxes: Vec<RotatedBox>,
    /// Class index of each box.
    pub labels: Vec<usize>,
}

/// Detector settings: the stage's [`DetectorParams`], the class count and the fixed parts of
/// Oriented R-CNN, as saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrientedRcnnConfig {
    /// Object classes (background excluded).
    pub num_classes: usize,
    /// Width of the neck and RPN.
    pub channels: usize,
    /// Anchor side in strides.
    pub anchor_scale: f64,
    /// Anchor height/width ratios.
    pub anchor_ratios: Vec<f64>,
    /// Best anchors per level decoded before NMS.
    pub rpn_pre_nms: usize,
    /// Proposals kept after NMS.
    pub rpn_post_nms: usize,
    /// IoU of the per-level NMS on the proposals' axis-aligned hulls.
    pub rpn_nms_iou: f64,
    /// Anchors sampled per image.
    pub rpn_batch: usize,
    /// RoIs sampled per image.
    pub roi_batch: usize,
    /// Largest foreground share of the RoI sample.
    pub roi_positive_fraction: f64,
    /// RoI feature side.
    pub roi_size: usize,
    /// Samples per RoI bin side.
    pub roi_sampling: usize,
    /// Width of the head's fully connected layers.
    pub fc_dim: usize,
    /// RoI size that maps to the second level.
    pub finest_scale: f64,
    /// Smallest detection score kept.
    pub score_threshold: f64,
    /// Per-class rotated NMS IoU of the detections.
    pub nms_iou: f64,
    /// Detections kept per image.
    pub max_detections: usize,
}

impl OrientedRcnnConfig {
    /// The default detector for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self::from_params(num_classes, &DetectorParams::default())
    }

    /// The detector a stage's `params` describe, for `num_classes` classes; the parts no
    /// recipe sets are Oriented R-CNN's.
    pub fn from_params(num_classes: usize, params: &DetectorParams) -> Self {
        OrientedRcnnConfig {
            num_classes,
            channels: params.channels,
            anchor_scale: params.anchor_scale,
            anchor_ratios: ANCHOR_RATIOS.to_vec(),
            rpn_pre_nms: params.rpn_pre_nms,
            rpn_post_nms: params.rpn_post_nms,
            rpn_nms_iou: 0.8,
            rpn_batch: params.rpn_batch,
            roi_batch: params.roi_batch,
            roi_positive_fraction: 0.25,
            roi_size: ROI_SIZE,
            roi_sampling: 2,
            fc_dim: params.fc_dim,
            finest_scale: params.finest_scale,
            score_threshold: params.score_threshold,
            nms_iou: params.nms_iou,
            max_detections: params.max_detections,
        }
    }

    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.num_classes > 0,
            "detector.num_classes must be positive"
        );
        anyhow::ensure!(
            self.channels > 0 && self.fc_dim > 0,
            "detector.channels and detector.fc_dim must be positive"
        );
        anyhow::ensure!(
            !self.anchor_ratios.is_empty() && self.anchor_ratios.iter().all(|r| *r > 0.0),
            "detector.anchor_ratios must be positive numbers"
        );
        anyhow::ensure!(
            self.anchor_scale > 0.0,
            "detector.anchor_scale must be positive"
        );
        anyhow::ensure!(
            self.rpn_pre_nms > 0 && self.rpn_post_nms > 0,
            "detector.rpn_pre_nms and rpn_post_nms must be positive"
        );
        anyhow::ensure!(
            self.rpn_batch > 0 && self.roi_batch > 0,
            "detector.rpn_batch and roi_batch must be positive"
        );
        anyhow::ensure!(
            self.roi_size > 0 && self.roi_sampling > 0,
            "detector.roi_size and roi_sampling must be positive"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.roi_positive_fraction),
            "detector.roi_positive_fraction must be in [0, 1]"
        );
        anyhow::ensure!(
            self.finest_scale > 0.0,
            "detector.finest_scale must be positive"
        );
        Ok(())
    }

    fn post(&self) -> PostSettings {
        PostSettings {
            score_threshold: self.score_threshold,
            nms_iou: self.nms_iou,
            max_detections: self.max_detections,
        }
    }
}

/// The four training losses and the count that explains the RoI ones.
#[derive(Debug)]
pub struct DetLosses {
    /// RPN objectness.
    pub rpn_cls: Tensor,
    /// RPN midpoint-offset regression.
    pub rpn_reg: Tensor,
    /// RoI classification.
    pub roi_cls: Tensor,
    /// RoI rotated-delta regression (summed over the positive RoIs, divided by all sampled).
    pub roi_reg: Tensor,
    /// Foreground RoIs sampled per image (at most `roi_batch · roi_positive_fraction`): the
    /// ground-truth boxes added to the proposals, then the proposals that overlap an object as
    /// the RPN learns; the RoI regression loss grows with them.
    pub positive_rois: f64,
}

impl DetLosses {
    /// Their sum, the training objective.
    pub fn total(&self) -> Tensor {
        &self.rpn_cls + &self.rpn_reg + &self.roi_cls + &self.roi_reg
    }

    /// Each loss with the name of its curve: `loss.rpn_cls`, `loss.rpn_box`, `loss.roi_cls`,
    /// `loss.roi_box` (their sum is the logged `loss`).
    pub fn named(&self) -> [(&'static str, &Tensor); 4] {
        [
            ("loss.rpn_cls", &self.rpn_cls),
            ("loss.rpn_box", &self.rpn_reg),
            ("loss.roi_cls", &self.roi_cls),
            ("loss.roi_box", &self.roi_reg),
        ]
    }
}

/// Pyramid levels the RoI head pools from: the first four (strides 4–32), as MMRotate's
/// Oriented R-CNN RoI extractor does; the fifth feeds the RPN only.
pub const ROI_LEVELS: usize = 4;

/// The detector.
#[derive(Debug)]
pub struct OrientedRcnn {
    /// ViTDet backbone (weights load from an MAE checkpoint under `backbone.`).
    pub backbone: VitDetBackbone,
    lateral: Vec<nn::Conv2D>,
    output: Vec<nn::Conv2D>,
    rpn: RpnHead,
    head: RoiHead,
    strides: Vec<f64>,
    /// Its settings.
    pub config: OrientedRcnnConfig,
}

impl OrientedRcnn {
    /// Builds the detector under `path` (`backbone.`, `neck.`, `rpn.`, `roi_head.`).
    pub fn new(
        path: &nn::Path,
        vit: &VitConfig,
        vitdet: &VitDetConfig,
        config: &OrientedRcnnConfig,
    ) -> Self {
        let backbone = VitDetBackbone::new(&(path / "backbone"), vit, vitdet);
        let (dim, channels) = (vit.embed_dim as i64, config.channels as i64);
        let neck = path / "neck";
        let conv = |p: nn::Path, cin: i64, k: i64| {
            nn::conv2d(
                p,
                cin,
                channels,
                k,
                nn::ConvConfig {
                    padding: k / 2,
                    ..Default::default()
                },
            )
        };
        let lateral = (0..4)
            .map(|i| conv(&neck / "lateral" / i, dim, 1))
            .collect();
        let output = (0..4)
            .map(|i| conv(&neck / "output" / i, channels, 3))
            .collect();
        let patch = vit.patch_size as f64;
        OrientedRcnn {
            backbone,
            lateral,
            output,
            rpn: RpnHead::new(&(path / "rpn"), channels, config.anchor_ratios.len() as i64),
            head: RoiHead::new(
                &(path / "roi_head"),
                channels,
                config.roi_size as i64,
                config.fc_dim as i64,
                config.num_classes as i64,
            ),
            strides: vec![patch / 4.0, patch / 2.0, patch, patch * 2.0, patch * 4.0],
            config: config.clone(),
        }
    }

    /// The strides of the five pyramid levels (4–64 for patch 16).
    pub fn strides(&self) -> &[f64] {
        &self.strides
    }

    /// Neck outputs `[B, channels, H/s, W/s]` for the five strides: one per backbone map, and
    /// a fifth by max-pooling the coarsest with stride 2 (ViTDet's and FPN's `LastLevelMaxPool`),
    /// whose anchors (8 × 64 = 512 px at patch 16) fit the largest objects.
    pub fn features(&self, images: &Tensor, train: bool) -> Vec<Tensor> {
        let mut levels: Vec<Tensor> = self
            .backbone
            .forward(images, train)
            .iter()
            .zip(self.lateral.iter().zip(&self.output))
            .map(|(x, (lateral, output))| output.forward(&lateral.forward(x)))
            .collect();
        if let Some(coarsest) = levels.last() {
            let extra = coarsest.max_pool2d([1, 1], [2, 2], [0, 0], [1, 1], false);
            levels.push(extra);
        }
        levels
    }

    /// The anchors of each level of `features`, `[H·W·A, 4]` `(x1, y1, x2, y2)` each.
    pub fn anchors(&self, features: &[Tensor]) -> Vec<Tensor> {
        features
            .iter()
            .zip(&self.strides)
            .map(|(f, &stride)| {
                let (_, _, h, w) = f.size4().expect("features are [B, C, H, W]");
                anchors::level_anchors(
                    stride,
                    self.config.anchor_scale * stride,
                    &self.config.anchor_ratios,
                    h,
                    w,
                    f.device(),
                )
            })
            .collect()
    }

    fn proposal_settings(&self) -> ProposalSettings {
        ProposalSettings {
            pre_nms: self.config.rpn_pre_nms as i64,
            post_nms: self.config.rpn_post_nms,
            nms_iou: self.config.rpn_nms_iou,
            min_size: 1e-2,
        }
    }

    fn roi_align(&self) -> RoiAlignSettings {
        RoiAlignSettings {
            out: self.config.roi_size as i64,
            sampling: self.config.roi_sampling as i64,
            finest_scale: self.config.finest_scale,
        }
    }

    /// Training losses of a batch `[B, 3, S, S]` with one [`ImageTargets`] per image.
    pub fn losses(&self, images: &Tensor, targets: &[ImageTargets]) -> DetLosses {
        self.losses_from_features(&self.features(images, true), targets)
    }

    /// Training losses from the neck outputs of [`OrientedRcnn::features`] (fp32), with one
    /// [`ImageTargets`] per image; lets a caller run the backbone under autocast.
    pub fn losses_from_features(&self, features: &[Tensor], targets: &[ImageTargets]) -> DetLosses {
        let levels: Vec<RpnLevel> = self.rpn.forward(features);
        let anchors = self.anchors(features);
        let rpn_cfg = RpnTraining {
            batch: self.config.rpn_batch as i64,
            positive_fraction: 0.5,
            positive_iou: 0.7,
            negative_iou: 0.3,
        };
        let (rpn_cls, rpn_reg) = rpn_losses(&levels, &Tensor::cat(&anchors, 0), targets, &rpn_cfg);
        let roi_cfg = RoiAssignSettings {
            positive_iou: 0.5,
            negative_iou: 0.5,
            batch: self.config.roi_batch,
            positive_fraction: self.config.roi_positive_fraction,
        };
        let device = features[0].device();
        let mut rois = Vec::new();
        let mut labels = Vec::new();
        let mut pos_rois = Vec::new();
        let mut pos_targets = Vec::new();
        for (b, target) in targets.iter().enumerate() {
            let mut candidates = tensor_to_boxes(&proposals(
                &levels,
                &anchors,
                b as i64,
                &self.proposal_settings(),
            ));
            candidates.extend(target.boxes.iter().map(|g| g.normalized_le90()));
            let assignments = assign(&candidates, &target.boxes, &roi_cfg);
            let order: Vec<usize> = Vec::<i64>::try_from(Tensor::randperm(
                candidates.len() as i64,
                (Kind::Int64, tch::Device::Cpu),
            ))
            .unwrap_or_default()
            .into_iter()
            .map(|i| i as usize)
            .collect();
            let chosen = sample(&assignments, &order, &roi_cfg);
            let chosen_boxes: Vec<RotatedBox> = chosen.iter().map(|&i| candidates[i]).collect();
            rois.push(boxes_to_tensor(&chosen_boxes).to_device(device));
            for &i in &chosen {
                match assignments[i] {
                    Assignment::Object(g) => {
                        labels.push(target.labels[g] as i64);
                        pos_rois.push(candidates[i]);
                        pos_targets.push(target.boxes[g]);
                    }
                    _ => labels.push(self.config.num_classes as i64),
                }
            }
        }
        let pooled = rotated_roi_align(
            &features[..ROI_LEVELS],
            &self.strides[..ROI_LEVELS],
            &rois,
            &self.roi_align(),
        );
        let (logits, deltas) = self.head.forward(&pooled);
        let sampled = labels.len().max(1) as f64;
        let labels = Tensor::from_slice(&labels).to_device(device);
        let roi_cls =
            logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0);
        let positive = labels
            .lt(self.config.num_classes as i64)
            .nonzero()
            .reshape([-1]);
        let roi_reg = if pos_rois.is_empty() {
            deltas.sum(Kind::Float) * 0.0
        } else {
            let goal = encode_deltas(&boxes_to_tensor(&pos_rois), &boxes_to_tensor(&pos_targets))
                .to_device(device);
            deltas
                .index_select(0, &positive)
                .smooth_l1_loss(&goal, Reduction::Sum, 1.0)
                / sampled
        };
        DetLosses {
            rpn_cls,
            rpn_reg,
            roi_cls,
            roi_reg,
            positive_rois: pos_rois.len() as f64 / targets.len().max(1) as f64,
        }
    }

    /// Detections of each image of a batch `[B, 3, S, S]`, best first.
    pub fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>> {
        tch::no_grad(|| {
            let features = self.features(images, false);
            let levels = self.rpn.forward(&features);
            let anchors = self.anchors(&features);
            let batch = images.size()[0];
            let rois: Vec<Tensor> = (0..batch)
                .map(|b| proposals(&levels, &anchors, b, &self.proposal_settings()))
                .collect();
            let pooled = rotated_roi_align(
                &features[..ROI_LEVELS],
                &self.strides[..ROI_LEVELS],
                &rois,
                &self.roi_align(),
            );
            let (logits, deltas) = self.head.forward(&pooled);
            let probs = logits.softmax(1, Kind::Float);
            let boxes = decode_deltas(&Tensor::cat(&rois, 0), &deltas);
            let mut out = Vec::new();
            let mut offset = 0;
            for r in &rois {
                let n = r.size()[0];
                let image_boxes = tensor_to_boxes(&boxes.narrow(0, offset, n));
                let image_probs = Vec::<f32>::try_from(
                    probs
                        .narrow(0, offset, n)
                        .to_device(tch::Device::Cpu)
                        .contiguous()
                        .view([-1]),
                )
                .unwrap_or_default();
                out.push(postprocess(
                    &image_boxes,
                    &image_probs,
                    self.config.num_classes,
                    &self.config.post(),
                ));
                offset += n;
            }
            out
        })
    }
}
