//! UperNet decode head (pyramid pooling on the coarsest map + FPN fusion), with mmseg's
//! parameter names under `decode_head`: `psp_modules.{i}.1`, `bottleneck`, `lateral_convs.{i}`,
//! `fpn_convs.{i}`, `fpn_bottleneck`, `conv_seg`. Each `ConvModule` is conv (no bias) +
//! BatchNorm (`.conv`, `.bn`) + ReLU.

use tch::nn::{self, Init, Module, ModuleT};
use tch::Tensor;

/// Pooling scales of the pyramid pooling module.
pub const POOL_SCALES: [i64; 4] = [1, 2, 3, 6];

/// Convolution + BatchNorm + ReLU.
#[derive(Debug)]
pub struct ConvModule {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvModule {
    /// A `kernel × kernel` ConvModule `in_dim → out_dim` with "same" padding.
    pub fn new(path: nn::Path, in_dim: i64, out_dim: i64, kernel: i64) -> Self {
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
            bn: nn::batch_norm2d(&path / "bn", out_dim, Default::default()),
        }
    }

    /// Applies conv, BatchNorm (batch statistics in training) and ReLU.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), train).relu()
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
    conv_seg: nn::Conv2D,
}

impl UperHead {
    /// A head over four maps of `in_dim` channels, `channels` wide, for `num_classes`.
    pub fn new(path: &nn::Path, in_dim: i64, channels: i64, num_classes: i64) -> Self {
        let psp_modules = (0..POOL_SCALES.len())
            .map(|i| ConvModule::new(path / "psp_modules" / i / 1, in_dim, channels, 1))
            .collect();
        let bottleneck = ConvModule::new(
            path / "bottleneck",
            in_dim + POOL_SCALES.len() as i64 * channels,
            channels,
            3,
        );
        let lateral_convs = (0..3)
            .map(|i| ConvModule::new(path / "lateral_convs" / i, in_dim, channels, 1))
            .collect();
        let fpn_convs = (0..3)
            .map(|i| ConvModule::new(path / "fpn_convs" / i, channels, channels, 3))
            .collect();
        let fpn_bottleneck = ConvModule::new(path / "fpn_bottleneck", 4 * channels, channels, 3);
        let conv_seg = nn::conv2d(
            path / "conv_seg",
            channels,
            num_classes,
            1,
            Default::default(),
        );
        UperHead {
            psp_modules,
            bottleneck,
            lateral_convs,
            fpn_convs,
            fpn_bottleneck,
            conv_seg,
        }
    }

    /// Class logits at the resolution of the finest map.
    pub fn forward_t(&self, maps: &[Tensor], train: bool) -> Tensor {
        let coarsest = &maps[3];
        let (h, w) = (coarsest.size()[2], coarsest.size()[3]);
        let mut pooled = vec![coarsest.shallow_clone()];
        for (module, scale) in self.psp_modules.iter().zip(POOL_SCALES) {
            let p = module.forward_t(&coarsest.adaptive_avg_pool2d([scale, scale]), train);
            pooled.push(resize(&p, h, w));
        }
        let mut laterals: Vec<Tensor> = self
            .lateral_convs
            .iter()
            .zip(maps)
            .map(|(conv, m)| conv.forward_t(m, train))
            .collect();
        laterals.push(self.bottleneck.forward_t(&Tensor::cat(&pooled, 1), train));
        for i in (1..laterals.len()).rev() {
            let (th, tw) = (laterals[i - 1].size()[2], laterals[i - 1].size()[3]);
            let up = resize(&laterals[i], th, tw);
            laterals[i - 1] = &laterals[i - 1] + up;
        }
        let (fh, fw) = (laterals[0].size()[2], laterals[0].size()[3]);
        let mut outs: Vec<Tensor> = self
            .fpn_convs
            .iter()
            .zip(&laterals)
            .map(|(conv, l)| resize(&conv.forward_t(l, train), fh, fw))
            .collect();
        outs.push(resize(&laterals[3], fh, fw));
        self.conv_seg
            .forward(&self.fpn_bottleneck.forward_t(&Tensor::cat(&outs, 1), train))
    }
}

/// Bilinear resize of `[batch, chans, h, w]` (no-op at the same size).
pub fn resize(x: &Tensor, h: i64, w: i64) -> Tensor {
    if x.size()[2] == h && x.size()[3] == w {
        return x.shallow_clone();
    }
    x.upsample_bilinear2d([h, w], false, None, None)
}
