//! The (parallel) vision transformer, config-driven by [`VitConfig`], with timm's parameter
//! names: `patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.{i}...`, `norm`.

use std::rc::Rc;

use tch::nn::{self, Init, Module};
use tch::Tensor;

use super::checkpointing::{run_blocks, Tape};
use super::layers::{layer_norm, xavier_uniform, Block, BlockDims, TokenMixing};
use super::pos_embed::sincos_2d_with_cls;
use crate::arch::VitConfig;

/// How the position table is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosEmbed {
    /// A trainable table (timm's default), initialised with std 0.02.
    Learned,
    /// MAE's frozen 2-D sin-cos table (saved in checkpoints, not trained).
    FixedSinCos,
}

/// The patch embedding: a `patch × patch` convolution with stride `patch`.
#[derive(Debug)]
pub struct PatchEmbed {
    proj: nn::Conv2D,
}

impl PatchEmbed {
    /// Creates `path.proj` mapping `in_chans` to `dim`.
    pub fn new(path: nn::Path, in_chans: i64, dim: i64, patch: i64) -> Self {
        let fan_in = in_chans * patch * patch;
        let config = nn::ConvConfig {
            stride: patch,
            ws_init: xavier_uniform(fan_in, dim),
            bs_init: Init::Const(0.0),
            ..Default::default()
        };
        PatchEmbed {
            proj: nn::conv2d(path / "proj", in_chans, dim, patch, config),
        }
    }

    /// Embeds images `[batch, chans, H, W]` into tokens `[batch, (H/p)·(W/p), dim]`.
    pub fn forward(&self, images: &Tensor) -> Tensor {
        self.proj.forward(images).flatten(2, 3).transpose(1, 2)
    }
}

/// A vision transformer backbone (no classification head).
#[derive(Debug)]
pub struct VisionTransformer {
    /// The architecture it was built from.
    pub config: VitConfig,
    /// Patch embedding.
    pub patch_embed: PatchEmbed,
    /// Class token `[1, 1, dim]`.
    pub cls_token: Tensor,
    /// Position table `[1, 1 + patches, dim]` (class token first).
    pub pos_embed: Tensor,
    /// The stages, each of `config.parallel` branches.
    pub blocks: Vec<Rc<Block>>,
    /// Final LayerNorm.
    pub norm: nn::LayerNorm,
    /// Where the stages record themselves when they run checkpointed in training.
    checkpointing: Option<Tape>,
}

impl VisionTransformer {
    /// Builds the model under `path`; stochastic depth rises linearly over the stages up to
    /// `config.drop_path`.
    pub fn new(path: &nn::Path, config: &VitConfig, pos: PosEmbed) -> Self {
        let dim = config.embed_dim as i64;
        let patches = config.num_patches() as i64;
        let patch_embed = PatchEmbed::new(
            path / "patch_embed",
            config.in_chans as i64,
            dim,
            config.patch_size as i64,
        );
        let cls_token = path.var(
            "cls_token",
            &[1, 1, dim],
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        let pos_embed = match pos {
            PosEmbed::Learned => path.var(
                "pos_embed",
                &[1, patches + 1, dim],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            PosEmbed::FixedSinCos => {
                let mut table = path.zeros_no_train("pos_embed", &[1, patches + 1, dim]);
                tch::no_grad(|| table.copy_(&sincos_2d_with_cls(dim, config.grid_size() as i64)));
                table
            }
        };
        let dims = BlockDims {
            dim,
            num_heads: config.num_heads as i64,
            mlp_hidden: config.mlp_hidden_dim() as i64,
            qkv_bias: config.qkv_bias,
        };
        let blocks = (0..config.depth)
            .map(|i| {
                Rc::new(Block::new(
                    path / "blocks" / i,
                    dims,
                    config.parallel,
                    stage_drop_path(config, i),
                ))
            })
            .collect();
        let norm = layer_norm(path / "norm", dim);
        VisionTransformer {
            config: config.clone(),
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            norm,
            checkpointing: None,
        }
    }

    /// Checkpoints the activations of every stage in training: they are recomputed during
    /// `tape.backward()` instead of kept (see [`super::checkpointing`]).
    pub fn checkpoint_activations(&mut self, tape: &Tape) {
        self.checkpointing = Some(tape.clone());
    }

    /// Runs every stage on `tokens`, stage `i` mixing tokens as `mixing(i)`, checkpointed
    /// when [`VisionTransformer::checkpoint_activations`] asked for it.
    pub fn run_blocks(
        &self,
        tokens: &Tensor,
        mixing: &dyn Fn(usize) -> TokenMixing,
        train: bool,
    ) -> Tensor {
        run_blocks(
            &self.blocks,
            tokens,
            mixing,
            train,
            self.checkpointing.as_ref(),
        )
    }

    /// Patch tokens with their position embeddings added: `[batch, patches, dim]`.
    pub fn embed_patches(&self, images: &Tensor) -> Tensor {
        let tokens = self.patch_embed.forward(images);
        let n = self.pos_embed.size()[1];
        tokens + self.pos_embed.narrow(1, 1, n - 1)
    }

    /// Class token with its position embedding, expanded to `batch`: `[batch, 1, dim]`.
    pub fn cls_with_pos(&self, batch: i64) -> Tensor {
        (&self.cls_token + self.pos_embed.narrow(1, 0, 1)).expand([batch, -1, -1], false)
    }

    /// Runs every stage with global attention, then the final norm.
    pub fn encode_tokens(&self, tokens: &Tensor, train: bool) -> Tensor {
        let x = self.run_blocks(tokens, &|_| TokenMixing::Global, train);
        self.norm.forward(&x)
    }

    /// timm's `forward_features`: `[batch, 1 + patches, dim]` after the final norm.
    pub fn forward_features(&self, images: &Tensor, train: bool) -> Tensor {
        let patches = self.embed_patches(images);
        let tokens = Tensor::cat(&[self.cls_with_pos(patches.size()[0]), patches], 1);
        self.encode_tokens(&tokens, train)
    }
}

/// Stochastic depth of stage `i`: linear from 0 to `config.drop_path` (timm's schedule).
pub fn stage_drop_path(config: &VitConfig, i: usize) -> f64 {
    if config.depth <= 1 {
        return config.drop_path;
    }
    config.drop_path * i as f64 / (config.depth - 1) as f64
}

/// Splits `[batch, chans, H, W]` into flattened patches `[batch, patches, p·p·chans]`,
/// row-major over the grid, each patch ordered (row, col, channel) like MAE's `patchify`.
pub fn patchify(images: &Tensor, patch: i64) -> Tensor {
    let (b, c, h, w) = images.size4().expect("images are [batch, chans, H, W]");
    let (gh, gw) = (h / patch, w / patch);
    images
        .reshape([b, c, gh, patch, gw, patch])
        .permute([0, 2, 4, 3, 5, 1])
        .reshape([b, gh * gw, patch * patch * c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::count_parameters;
    use tch::{Device, Kind};

    fn tiny(parallel: usize) -> VitConfig {
        VitConfig {
            patch_size: 4,
            image_size: 16,
            in_chans: 3,
            embed_dim: 32,
            depth: 2,
            parallel,
            num_heads: 2,
            mlp_ratio: 4.0,
            qkv_bias: true,
            drop_path: 0.1,
        }
    }

    #[test]
    fn instantiated_parameters_match_the_analytical_count() {
        for parallel in [1, 3] {
            for pos in [PosEmbed::Learned, PosEmbed::FixedSinCos] {
                let vs = nn::VarStore::new(Device::Cpu);
                let _ = VisionTransformer::new(&vs.root(), &tiny(parallel), pos);
                assert_eq!(count_parameters(&vs), tiny(parallel).param_count());
            }
        }
    }

    #[test]
    fn forward_features_gives_class_and_patch_tokens_with_timm_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = VisionTransformer::new(&vs.root(), &tiny(1), PosEmbed::Learned);
        let out = vit.forward_features(
            &Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu)),
            true,
        );
        assert_eq!(out.size(), vec![2, 17, 32]);
        let names = vs.variables();
        for name in [
            "patch_embed.proj.weight",
            "cls_token",
            "pos_embed",
            "blocks.1.attn.qkv.bias",
            "blocks.0.mlp.fc1.weight",
            "norm.weight",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
    }

    #[test]
    fn patchify_orders_pixels_row_col_channel() {
        let img = Tensor::arange(2 * 4 * 4, (Kind::Float, Device::Cpu)).reshape([1, 2, 4, 4]);
        let p = patchify(&img, 2);
        assert_eq!(p.size(), vec![1, 4, 8]);
        // Patch 1 = rows 0-1, cols 2-3; first pixel (0,2): channel 0 = 2, channel 1 = 18.
        let row = Vec::<f32>::try_from(p.get(0).get(1)).unwrap();
        assert_eq!(&row[..4], &[2.0, 18.0, 3.0, 19.0]);
    }
}
