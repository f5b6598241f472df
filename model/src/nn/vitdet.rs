//! ViTDet-style backbone for dense prediction: the (parallel) ViT with window attention in
//! most stages and global attention in a few evenly spaced ones, position embeddings
//! resampled to the fine-tuning grid (at load, see [`super::checkpoint`]), and a simple
//! feature pyramid at strides patch/4, patch/2, patch and 2·patch (4/8/16/32 for patch 16).
//!
//! Parameter names: the ViT's own (`patch_embed`, `pos_embed`, `blocks.{i}`, `norm`) under
//! the backbone's path, then `neck.fpn1.{0,1,3}` (two 2× transposed convolutions with a
//! channel LayerNorm between), `neck.fpn2.0` (one 2× transposed convolution); `fpn3` is the
//! identity and `fpn4` a 2× max-pool. The class token is kept (so MAE checkpoints load
//! without unexpected keys) but not used.

use tch::nn::{self, Module};
use tch::Tensor;

use super::layers::{layer_norm, TokenMixing};
use super::vit::{PosEmbed, VisionTransformer};
use crate::arch::VitConfig;

pub use crate::params::vitdet::VitDetConfig;

/// A LayerNorm over the channels of a `[batch, chans, H, W]` map.
#[derive(Debug)]
struct ChannelNorm(nn::LayerNorm);

impl Module for ChannelNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0
            .forward(&x.permute([0, 2, 3, 1]))
            .permute([0, 3, 1, 2])
    }
}

fn upsample2x(path: nn::Path, dim: i64) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        ..Default::default()
    };
    nn::conv_transpose2d(path, dim, dim, 2, config)
}

/// The backbone: ViT + simple feature pyramid.
#[derive(Debug)]
pub struct VitDetBackbone {
    /// The transformer (its weights load from an MAE checkpoint).
    pub vit: VisionTransformer,
    global: Vec<usize>,
    window: i64,
    fpn1: (nn::ConvTranspose2D, ChannelNorm, nn::ConvTranspose2D),
    fpn2: nn::ConvTranspose2D,
}

impl VitDetBackbone {
    /// Builds the backbone under `path`; `vit.image_size` is the fine-tuning crop size.
    pub fn new(path: &nn::Path, vit: &VitConfig, config: &VitDetConfig) -> Self {
        let dim = vit.embed_dim as i64;
        let neck = path / "neck";
        let fpn1 = (
            upsample2x(&neck / "fpn1" / 0, dim),
            ChannelNorm(layer_norm(&neck / "fpn1" / 1, dim)),
            upsample2x(&neck / "fpn1" / 3, dim),
        );
        let global = config.global_stages(vit.depth);
        let window = config.window_size as i64;
        let mut transformer = VisionTransformer::new(path, vit, PosEmbed::Learned);
        if config.rel_pos {
            let grid = vit.grid_size() as i64;
            for (i, block) in transformer.blocks.iter_mut().enumerate() {
                let side = if global.contains(&i) { grid } else { window };
                std::rc::Rc::get_mut(block)
                    .expect("no block is shared before the backbone is built")
                    .add_rel_pos(&(path / "blocks" / i), side, side);
            }
        }
        VitDetBackbone {
            vit: transformer,
            global,
            window,
            fpn1,
            fpn2: upsample2x(&neck / "fpn2" / 0, dim),
        }
    }

    /// Number of stages (for layer-wise lr decay).
    pub fn depth(&self) -> usize {
        self.vit.blocks.len()
    }

    /// Four feature maps `[batch, dim, H/s, W/s]` for s = patch/4, patch/2, patch, 2·patch.
    /// Input sides must be multiples of the patch size and equal the configured image size.
    pub fn forward(&self, images: &Tensor, train: bool) -> Vec<Tensor> {
        let patch = self.vit.config.patch_size as i64;
        let (b, _, h, w) = images.size4().expect("images are [batch, chans, H, W]");
        let (gh, gw) = (h / patch, w / patch);
        let window = TokenMixing::Window {
            height: gh,
            width: gw,
            size: self.window,
        };
        let mixing = |i: usize| {
            if self.global.contains(&i) {
                TokenMixing::Global
            } else {
                window
            }
        };
        let x = self
            .vit
            .run_blocks(&self.vit.embed_patches(images), &mixing, train);
        let x = self.vit.norm.forward(&x);
        let map = x.transpose(1, 2).reshape([b, -1, gh, gw]);
        let p1 = self
            .fpn1
            .2
            .forward(&self.fpn1.1.forward(&self.fpn1.0.forward(&map)).gelu("none"));
        let p2 = self.fpn2.forward(&map);
        let p4 = map.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        vec![p1, p2, map, p4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn global_stages_are_evenly_spaced_and_end_at_the_last() {
        let c = VitDetConfig::default();
        assert_eq!(c.global_stages(12), vec![2, 5, 8, 11]);
        assert_eq!(c.global_stages(24), vec![5, 11, 17, 23]);
        assert_eq!(c.global_stages(2), vec![0, 1]);
    }

    #[test]
    fn relative_position_tables_fit_each_blocks_window_or_the_grid() {
        let vit: VitConfig = serde_json::from_value(serde_json::json!({
            "patch_size": 8, "image_size": 64, "embed_dim": 16, "depth": 4, "num_heads": 2
        }))
        .expect("a config");
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VitDetConfig {
            window_size: 4,
            global_stages: Some(vec![3]),
            rel_pos: true,
        };
        let backbone = VitDetBackbone::new(&vs.root(), &vit, &config);
        let vars = vs.variables();
        // Window blocks: 4 tokens a side, 7 offsets; the global block: the 8×8 grid, 15.
        assert_eq!(vars["blocks.0.attn.rel_pos_h"].size(), [7, 8]);
        assert_eq!(vars["blocks.3.attn.rel_pos_w"].size(), [15, 8]);
        let maps = backbone.forward(
            &Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
            true,
        );
        assert_eq!(maps[2].size(), [1, 16, 8, 8]);
    }

    #[test]
    fn pyramid_has_four_strides() {
        let vit = VitConfig {
            patch_size: 8,
            image_size: 64,
            in_chans: 3,
            embed_dim: 16,
            depth: 2,
            parallel: 2,
            num_heads: 2,
            mlp_ratio: 4.0,
            qkv_bias: true,
            drop_path: 0.1,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = VitDetConfig {
            window_size: 4,
            global_stages: None,
            rel_pos: false,
        };
        let backbone = VitDetBackbone::new(&vs.root(), &vit, &cfg);
        let maps = backbone.forward(
            &Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
            true,
        );
        let sides: Vec<i64> = maps.iter().map(|m| m.size()[2]).collect();
        assert_eq!(sides, vec![32, 16, 8, 4]);
        assert!(maps.iter().all(|m| m.size()[1] == 16));
    }
}
