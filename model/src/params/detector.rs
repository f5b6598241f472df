//! The Oriented R-CNN settings a `finetune-det` stage exposes.

use super::types::RATIO;

crate::schema! {
    /// Oriented R-CNN settings (defaults: Oriented R-CNN's).
    pub struct DetectorParams includes {} {
        /// FPN and RPN width.
        channels: usize = 256,
        /// Anchor side over the level's stride.
        anchor_scale: f64 = 8.0,
        /// RoI side mapped to the finest level.
        finest_scale: f64 = 56.0,
        /// Width of the RoI head's fully connected layers.
        fc_dim: usize = 1024,
        /// Proposals per level before the RPN's NMS.
        rpn_pre_nms: usize = 2000,
        /// Proposals kept after the RPN's NMS.
        rpn_post_nms: usize = 2000,
        /// Anchors sampled per image for the RPN loss.
        rpn_batch: usize = 256,
        /// Proposals sampled per image for the RoI loss.
        roi_batch: usize = 512,
        /// Minimum detection score kept.
        score_threshold: f64 as RATIO = 0.05,
        /// Rotated NMS IoU per class.
        nms_iou: f64 as RATIO = 0.1,
        /// Detections kept per image.
        max_detections: usize = 2000,
    }
}

impl DetectorParams {
    /// Checks values the types cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("channels", self.channels),
            ("fc_dim", self.fc_dim),
            ("rpn_pre_nms", self.rpn_pre_nms),
            ("rpn_post_nms", self.rpn_post_nms),
            ("rpn_batch", self.rpn_batch),
            ("roi_batch", self.roi_batch),
        ];
        for (name, value) in positive {
            crate::ensure_param!(value > 0, name, "`{name}` must be positive");
        }
        crate::ensure_param!(
            self.anchor_scale > 0.0,
            "anchor_scale",
            "`anchor_scale` must be positive"
        );
        crate::ensure_param!(
            self.finest_scale > 0.0,
            "finest_scale",
            "`finest_scale` must be positive"
        );
        Ok(())
    }
}
