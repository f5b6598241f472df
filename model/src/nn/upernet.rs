//! UperNet decode head (pyramid pooling on the coarsest map + FPN fusion), with mmseg's
//! parameter names under `decode_head`: `psp_modules.{i}.1`, `bottleneck`, `lateral_convs.{i}`,
//! `fpn_convs.{i}`, `fpn_bottleneck`, `conv_seg`; and the auxiliary FCN head (`convs.0`,
//! `conv_seg`) that mmseg trains beside it. Each `ConvModule` is conv (no bias) + a norm
//! (`.conv`, `.bn` or `.gn`) + ReLU; both heads drop whole channels (`Dropout2d`) before their
//! classifier in training.

use tch::nn::{self, Init, Module};
use tch::Tensor;

use super::norm::{Norm2d, NormSpec};

pub use crate::shapes::{AUX_MAP, POOL_SCALES};

/// What every conv module of a head shares: its normalisation and the classifier's dropout.
#[derive(Debug, Clone, Default)]
pub struct HeadSettings {
    /// Normalisation of the conv modules.
    pub norm: NormSpec,
    /// Probability of dropping a whole channel before the classifier in training.
    pub dropout: f64,
}

/// Convolution + norm + ReLU.
#[derive(Debug)]
pub struct ConvModule {
    conv: nn::Conv2D,
    norm: Norm2d,
}

impl ConvModule {
    /// A `kernel × kernel` ConvModule `in_dim → out_dim` with "same" padding.
    pub fn new(path: nn::Path, in_dim: i64, out_dim: i64, kernel: i64, norm: &NormSpec) -> Self {
        let config = nn::ConvConfig {
            padding: kernel / 2,
            bias: false,
            ws_init: Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            ..Default::default()
        };
        ConvModule {
            conv: nn::conv2d(&path / "conv", in_dim, out_dim, kernel, config),
            norm: Norm2d::new(&path, out_dim, norm),
        }
    }

    /// Applies conv, the norm (batch statistics in training) and ReLU.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> anyhow::Result<Tensor> {
        Ok(self.norm.forward_t(&self.conv.forward(x), train)?.relu())
    }
}

/// The 1×1 classifier of a head, after channel dropout in training.
#[derive(Debug)]
struct Classifier {
    conv_seg: nn::Conv2D,
    dropout: f64,
}

impl Classifier {
    fn new(path: &nn::Path, channels: i64, num_classes: i64, dropout: f64) -> Self {
        Classifier {
            conv_seg: nn::conv2d(
                path / "conv_seg",
                channels,
                num_classes,
                1,
                Default::default(),
            ),
            dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.conv_seg
            .forward(&x.feature_dropout(self.dropout, train && self.dropout > 0.0))
    }
}

/// The UperNet head.
#[derive(Debug)]
pub struct UperHead {
    psp_modules: Vec<ConvModule>,
    bottleneck: ConvModule,
    lateral_convs: Vec<ConvModule>,
    fpn_convs: Vec<ConvModule>,
    fpn_bottleneck: ConvModule,
    classifier: Classifier,
}

impl UperHead {
    /// A head over four maps of `in_dim` channels, `channels` wide, for `num_classes`.
    pub fn new(
        path: &nn::Path,
        in_dim: i64,
        channels: i64,
        num_classes: i64,
        settings: &HeadSettings,
    ) -> Self {
        let norm = &settings.norm;
        let psp_modules = (0..POOL_SCALES.len())
            .map(|i| ConvModule::new(path / "psp_modules" / i / 1, in_dim, channels, 1, norm))
            .collect();
        let bottleneck = ConvModule::new(
            path / "bottleneck",
            in_dim + POOL_SCALES.len() as i64 * channels,
            channels,
            3,
            norm,
        );
        let lateral_convs = (0..3)
            .map(|i| ConvModule::new(path / "lateral_convs" / i, in_dim, channels, 1, norm))
            .collect();
        let fpn_convs = (0..3)
            .map(|i| ConvModule::new(path / "fpn_convs" / i, channels, channels, 3, norm))
            .collect();
        let fpn_bottleneck =
            ConvModule::new(path / "fpn_bottleneck", 4 * channels, channels, 3, norm);
        let classifier = Classifier::new(path, channels, num_classes, settings.dropout);
        UperHead {
            psp_modules,
            bottleneck,
            lateral_convs,
            fpn_convs,
            fpn_bottleneck,
            classifier,
        }
    }

    /// Class logits at the resolution of the finest map.
    pub fn forward_t(&self, maps: &[Tensor], train: bool) -> anyhow::Result<Tensor> {
        let coarsest = &maps[3];
        let (h, w) = (coarsest.size()[2], coarsest.size()[3]);
        let mut pooled = vec![coarsest.shallow_clone()];
        for (module, scale) in self.psp_modules.iter().zip(POOL_SCALES) {
            let side = scale as i64;
            let p = module.forward_t(&coarsest.adaptive_avg_pool2d([side, side]), train)?;
            pooled.push(resize(&p, h, w));
        }
        let mut laterals = self
            .lateral_convs
            .iter()
            .zip(maps)
            .map(|(conv, m)| conv.forward_t(m, train))
            .collect::<anyhow::Result<Vec<Tensor>>>()?;
        laterals.push(self.bottleneck.forward_t(&Tensor::cat(&pooled, 1), train)?);
        for i in (1..laterals.len()).rev() {
            let (th, tw) = (laterals[i - 1].size()[2], laterals[i - 1].size()[3]);
            let up = resize(&laterals[i], th, tw);
            laterals[i - 1] = &laterals[i - 1] + up;
        }
        let (fh, fw) = (laterals[0].size()[2], laterals[0].size()[3]);
        let mut outs = self
            .fpn_convs
            .iter()
            .zip(&laterals)
            .map(|(conv, l)| Ok(resize(&conv.forward_t(l, train)?, fh, fw)))
            .collect::<anyhow::Result<Vec<Tensor>>>()?;
        outs.push(resize(&laterals[3], fh, fw));
        let fused = self
            .fpn_bottleneck
            .forward_t(&Tensor::cat(&outs, 1), train)?;
        Ok(self.classifier.forward_t(&fused, train))
    }
}

/// The auxiliary FCN head (`auxiliary_head`): one 3×3 ConvModule on one pyramid map and a
/// classifier. It adds a loss in training and is not used at inference.
#[derive(Debug)]
pub struct FcnHead {
    conv: ConvModule,
    classifier: Classifier,
}

impl FcnHead {
    /// A head over a map of `in_dim` channels, `channels` wide, for `num_classes`.
    pub fn new(
        path: &nn::Path,
        in_dim: i64,
        channels: i64,
        num_classes: i64,
        settings: &HeadSettings,
    ) -> Self {
        FcnHead {
            conv: ConvModule::new(path / "convs" / 0, in_dim, channels, 3, &settings.norm),
            classifier: Classifier::new(path, channels, num_classes, settings.dropout),
        }
    }

    /// Class logits at the resolution of `map`.
    pub fn forward_t(&self, map: &Tensor, train: bool) -> anyhow::Result<Tensor> {
        Ok(self
            .classifier
            .forward_t(&self.conv.forward_t(map, train)?, train))
    }
}

/// Bilinear resize of `[batch, chans, h, w]` (no-op at the same size).
pub fn resize(x: &Tensor, h: i64, w: i64) -> Tensor {
    if x.size()[2] == h && x.size()[3] == w {
        return x.shallow_clone();
    }
    x.upsample_bilinear2d([h, w], false, None, None)
}
