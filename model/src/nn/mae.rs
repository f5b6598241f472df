//! Masked autoencoder (MAE) pretraining: random masking of patches, a ViT encoder on the
//! visible ones, a light decoder that predicts the pixels of the masked ones. Parameter
//! names follow the MAE reference (`decoder_embed`, `mask_token`, `decoder_pos_embed`,
//! `decoder_blocks.{i}`, `decoder_norm`, `decoder_pred`), the encoder's timm's.

use std::rc::Rc;

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use super::checkpointing::{run_blocks, Tape};
use super::layers::{layer_norm, linear, Block, BlockDims, TokenMixing};
use super::pos_embed::sincos_2d_with_cls;
use super::vit::{patchify, PosEmbed, VisionTransformer};
use crate::arch::VitConfig;

pub use crate::params::mae::MaeConfig;

/// What one MAE forward pass returns.
#[derive(Debug)]
pub struct MaeOutput {
    /// Mean squared error over the masked patches (a scalar).
    pub loss: Tensor,
    /// Predicted pixels of every patch `[batch, patches, p·p·chans]`.
    pub pred: Tensor,
    /// 1 for masked patches, 0 for visible ones `[batch, patches]`.
    pub mask: Tensor,
}

/// The MAE model: a [`VisionTransformer`] encoder with a frozen sin-cos position table and
/// the decoder.
#[derive(Debug)]
pub struct MaskedAutoencoder {
    /// The encoder, whose weights a fine-tuning stage loads.
    pub encoder: VisionTransformer,
    /// MAE settings.
    pub config: MaeConfig,
    decoder_embed: nn::Linear,
    mask_token: Tensor,
    decoder_pos_embed: Tensor,
    decoder_blocks: Vec<Rc<Block>>,
    decoder_norm: nn::LayerNorm,
    decoder_pred: nn::Linear,
    /// Where the decoder blocks record themselves when they run checkpointed in training.
    checkpointing: Option<Tape>,
}

impl MaskedAutoencoder {
    /// Builds encoder and decoder at the root of `path`.
    pub fn new(path: &nn::Path, vit: &VitConfig, config: &MaeConfig) -> Self {
        let encoder = VisionTransformer::new(path, vit, PosEmbed::FixedSinCos);
        let dim = vit.embed_dim as i64;
        let ddim = config.decoder_embed_dim as i64;
        let patches = vit.num_patches() as i64;
        let decoder_embed = linear(path / "decoder_embed", dim, ddim, true);
        let mask_token = path.var(
            "mask_token",
            &[1, 1, ddim],
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        let mut decoder_pos_embed =
            path.zeros_no_train("decoder_pos_embed", &[1, patches + 1, ddim]);
        tch::no_grad(|| decoder_pos_embed.copy_(&sincos_2d_with_cls(ddim, vit.grid_size() as i64)));
        let dims = BlockDims {
            dim: ddim,
            num_heads: config.decoder_num_heads as i64,
            mlp_hidden: (config.decoder_embed_dim as f64 * vit.mlp_ratio) as i64,
            qkv_bias: true,
        };
        let decoder_blocks = (0..config.decoder_depth)
            .map(|i| Rc::new(Block::new(path / "decoder_blocks" / i, dims, 1, 0.0)))
            .collect();
        let decoder_norm = layer_norm(path / "decoder_norm", ddim);
        let pixels = (vit.patch_size * vit.patch_size * vit.in_chans) as i64;
        let decoder_pred = linear(path / "decoder_pred", ddim, pixels, true);
        MaskedAutoencoder {
            encoder,
            config: config.clone(),
            decoder_embed,
            mask_token,
            decoder_pos_embed,
            decoder_blocks,
            decoder_norm,
            decoder_pred,
            checkpointing: None,
        }
    }

    /// Checkpoints the activations of every encoder and decoder block in training (see
    /// [`super::checkpointing`]).
    pub fn checkpoint_activations(&mut self, tape: &Tape) {
        self.encoder.checkpoint_activations(tape);
        self.checkpointing = Some(tape.clone());
    }

    /// Runs MAE on `images` (`[batch, chans, H, W]`). `noise` (`[batch, patches]`) decides
    /// which patches stay visible: the lowest `1 - mask_ratio` fraction of each row. Pass
    /// uniform noise for training, or a fixed tensor to reproduce a masking.
    pub fn forward_with_noise(&self, images: &Tensor, noise: &Tensor, train: bool) -> MaeOutput {
        let patches = self.encoder.embed_patches(images);
        let (b, n, dim) = patches
            .size3()
            .expect("patch tokens are [batch, patches, dim]");
        let keep = ((n as f64) * (1.0 - self.config.mask_ratio)) as i64;
        let shuffle = noise.argsort(1, false);
        let restore = shuffle.argsort(1, false);
        let kept_ids = shuffle.narrow(1, 0, keep);
        let visible = patches.gather(
            1,
            &kept_ids.unsqueeze(-1).expand([b, keep, dim], false),
            false,
        );
        let mask = Tensor::ones([b, n], (Kind::Float, images.device()));
        let mask = mask.index_fill(
            1,
            &Tensor::arange(keep, (Kind::Int64, images.device())),
            0.0,
        );
        let mask = mask.gather(1, &restore, false);

        let tokens = Tensor::cat(&[self.encoder.cls_with_pos(b), visible], 1);
        let latent = self.encoder.encode_tokens(&tokens, train);

        let x = self.decoder_embed.forward(&latent);
        let ddim = x.size()[2];
        let masked = self.mask_token.expand([b, n - keep, ddim], false);
        let shuffled = Tensor::cat(&[x.narrow(1, 1, keep), masked], 1);
        let unshuffled =
            shuffled.gather(1, &restore.unsqueeze(-1).expand([b, n, ddim], false), false);
        let x = Tensor::cat(&[x.narrow(1, 0, 1), unshuffled], 1) + &self.decoder_pos_embed;
        let x = run_blocks(
            &self.decoder_blocks,
            &x,
            &|_| TokenMixing::Global,
            train,
            self.checkpointing.as_ref(),
        );
        let pred = self
            .decoder_pred
            .forward(&self.decoder_norm.forward(&x))
            .narrow(1, 1, n);

        let loss = self.loss(images, &pred, &mask);
        MaeOutput { loss, pred, mask }
    }

    /// Runs MAE with uniform random masking drawn from torch's generator.
    pub fn forward(&self, images: &Tensor, train: bool) -> MaeOutput {
        let b = images.size()[0];
        let n = self.encoder.config.num_patches() as i64;
        let noise = Tensor::rand([b, n], (Kind::Float, images.device()));
        self.forward_with_noise(images, &noise, train)
    }

    /// Mean squared error per patch, averaged over the masked patches.
    fn loss(&self, images: &Tensor, pred: &Tensor, mask: &Tensor) -> Tensor {
        let mut target = patchify(images, self.encoder.config.patch_size as i64);
        if self.config.norm_pix_loss {
            let mean = target.mean_dim(-1, true, Kind::Float);
            let var = target.var_dim(-1, true, true);
            target = (target - mean) / (var + 1e-6).sqrt();
        }
        let per_patch = (pred - target).square().mean_dim(-1, false, Kind::Float);
        (per_patch * mask).sum(Kind::Float) / mask.sum(Kind::Float)
    }
}
