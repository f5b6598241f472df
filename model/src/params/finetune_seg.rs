//! Parameters of a `finetune-seg` stage.

use super::backbone::Backbone;
use super::data::{resolved_dataset, SegDataParams, SegFormat};
use super::init::BackboneInit;
use super::precision::Precision;
use super::types::RATIO;
use super::vitdet::VitDetConfig;

crate::schema! {
    /// Parameters of a `finetune-seg` stage: ViTDet backbone + UperNet.
    pub struct FinetuneSegParams includes {
        /// The backbone; `image_size` is the training crop.
        backbone: Backbone,
        /// Window attention and global stages.
        vitdet: VitDetConfig,
    } {
        /// UperNet width.
        head_channels: usize = 512,
        /// The data: a name in the stage's `datasets`, or a needed stage whose output is a
        /// dataset (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// Segmentation layout: loveda (7 classes) or potsdam (5 classes, clutter ignored)
        /// (unset: the dataset's `format`).
        format: Option<SegFormat> = None,
        /// Potsdam tiles held out for evaluation, with their crops (unset: the 14 standard test
        /// tiles).
        val_tiles: Option<Vec<String>> = None,
        /// Fraction of the training images, chosen from the seed.
        fraction: f64 as RATIO = 1.0,
        /// A needed mae-pretrain stage whose checkpoint initialises the backbone (unset: the
        /// only needed mae-pretrain stage, if any).
        pretrained: Option<String> = None,
        /// Where the backbone starts: `pretrained` (every backbone weight from the
        /// `pretrained` stage; the stage fails before training when one is missing) or `scratch`
        /// (random weights, on purpose) (unset: `pretrained` when a pretrained stage is given).
        init: Option<BackboneInit> = None,
        /// Optimiser steps.
        steps: u64,
        /// Crops per optimiser step.
        batch_size: usize,
        /// Peak learning rate.
        lr: f64 = 6e-5,
        /// Learning rate at the end of the cosine.
        min_lr: f64 = 0.0,
        /// Steps of linear warmup.
        warmup_steps: u64 = 0,
        /// AdamW weight decay, not on norms, biases, tokens or position tables.
        weight_decay: f64 = 0.01,
        /// Layer-wise learning-rate decay per block stage from the top.
        layer_decay: f64 as RATIO = 0.9,
        /// Steps between resume checkpoints (0: only when stopped).
        checkpoint_every: u64 = 0,
        /// Steps between progress events.
        log_every: u64 = 1,
        /// Recompute each transformer block's activations in the backward pass instead of
        /// keeping them: less memory, about one more forward pass of time, the same numbers.
        activation_checkpointing: bool = false,
        /// `fp32`, or `bf16` autocast over fp32 master weights and optimiser state (unset: bf16
        /// on a GPU, fp32 on a CPU; the device is not in the key).
        precision: Option<Precision> = None,
    }
}

impl FinetuneSegParams {
    /// Checks values the types cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let vit = self.backbone.vit()?;
        self.vitdet.validate(vit.depth, vit.grid_size())?;
        BackboneInit::resolve(self.init, self.pretrained.as_deref())?;
        self.seg_data()?;
        anyhow::ensure!(
            self.fraction > 0.0 && self.fraction <= 1.0,
            "`fraction` must be in (0, 1], got {}",
            self.fraction
        );
        anyhow::ensure!(self.steps > 0, "`steps` must be positive");
        anyhow::ensure!(self.batch_size > 0, "`batch_size` must be positive");
        anyhow::ensure!(self.lr > 0.0, "`lr` must be positive");
        anyhow::ensure!(self.layer_decay > 0.0, "`layer_decay` must be in (0, 1]");
        anyhow::ensure!(self.log_every > 0, "`log_every` must be positive");
        Ok(())
    }

    /// The dataset the stage reads.
    pub fn seg_data(&self) -> anyhow::Result<SegDataParams> {
        Ok(SegDataParams {
            name: resolved_dataset(&self.dataset)?,
            format: self.format.ok_or_else(|| {
                anyhow::anyhow!("`format` is not set: use one of loveda, potsdam")
            })?,
            val_tiles: self.val_tiles.clone(),
        })
    }
}
