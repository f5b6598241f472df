//! The RoI head: two shared fully connected layers, then class scores (classes + background)
//! and class-agnostic rotated deltas.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::shapes::ROI_DELTAS;

/// The head's layers.
#[derive(Debug)]
pub struct RoiHead {
    fc1: nn::Linear,
    fc2: nn::Linear,
    cls: nn::Linear,
    reg: nn::Linear,
}

fn linear(path: nn::Path, cin: i64, cout: i64, stdev: Option<f64>) -> nn::Linear {
    let mut config = nn::LinearConfig::default();
    if let Some(stdev) = stdev {
        config.ws_init = nn::Init::Randn { mean: 0.0, stdev };
        config.bs_init = Some(nn::Init::Const(0.0));
    }
    nn::linear(path, cin, cout, config)
}

impl RoiHead {
    /// A head for `[R, channels, roi, roi]` features predicting `num_classes` + background.
    pub fn new(path: &nn::Path, channels: i64, roi: i64, fc_dim: i64, num_classes: i64) -> Self {
        RoiHead {
            fc1: linear(path / "fc1", channels * roi * roi, fc_dim, None),
            fc2: linear(path / "fc2", fc_dim, fc_dim, None),
            cls: linear(path / "cls", fc_dim, num_classes + 1, Some(0.01)),
            reg: linear(path / "reg", fc_dim, ROI_DELTAS as i64, Some(0.001)),
        }
    }

    /// Class logits `[R, classes + 1]` (background last) and deltas `[R, 5]`.
    pub fn forward(&self, rois: &Tensor) -> (Tensor, Tensor) {
        let x = rois.flatten(1, -1);
        let x = self.fc2.forward(&self.fc1.forward(&x).relu()).relu();
        (self.cls.forward(&x), self.reg.forward(&x))
    }
}
