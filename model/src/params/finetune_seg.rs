//! Parameters of a `finetune-seg` stage.

use super::backbone::Backbone;
use super::data::{potsdam_labels, resolved_dataset, SegDataParams, SegFormat};
use super::init::BackboneInit;
use super::lr_decay::LrDecay;
use super::norm::Norm;
use super::precision::Precision;
use super::types::RATIO;
use super::vitdet::VitDetConfig;
use crate::data::formats::potsdam::PotsdamLabels;
use crate::data::transforms::seg_augment::SegAugment;
use crate::params::ParamError;

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
        /// Normalisation in the UperNet head: `sync_bn` (batch statistics all-reduced over the
        /// data-parallel ranks), `bn` (each rank's own) or `gn` (group norm).
        norm: Norm = Norm::SyncBn,
        /// Probability of dropping a whole channel before each head's classifier in training
        /// (mmseg's `dropout_ratio`).
        dropout: f64 as RATIO = 0.1,
        /// Weight of the auxiliary FCN head's loss (on the third pyramid map); 0: no
        /// auxiliary head. The head is not used at evaluation.
        aux_loss_weight: f64 = 0.4,
        /// Width of the auxiliary FCN head (unset: half of `head_channels`).
        aux_channels: Option<usize> = None,
        /// The data: a name in the stage's `datasets`, or a needed stage whose output is a
        /// dataset (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// Segmentation layout: loveda (7 classes) or potsdam (5 classes, clutter ignored)
        /// (unset: the dataset's `format`).
        format: Option<SegFormat> = None,
        /// Potsdam tiles held out for evaluation, with their crops (unset: the 14 standard test
        /// tiles).
        val_tiles: Option<Vec<String>> = None,
        /// potsdam: which reference labels: `full` (`*_label.tif`, 5_Labels_all) or `eroded`
        /// (`*_label_noBoundary.tif`, 5_Labels_all_noBoundary: boundaries ignored, the labels the
        /// benchmark scores) (unset: full).
        labels: Option<PotsdamLabels> = None,
        /// The shorter side each training image is scaled to before the random ratio (mmseg's
        /// `Resize` `img_scale`) (unset: its own).
        resize_side: Option<u32> = None,
        /// Range `[lo, hi]` of the random ratio the shorter side is scaled by before cropping
        /// (mmseg's `ratio_range`; `[1.0, 1.0]`: no rescale).
        ratio_range: Vec<f64> = vec![1.0, 1.0],
        /// A training crop is drawn again (up to 10 times) while one class covers this share of
        /// its labelled pixels or more (mmseg's `cat_max_ratio`; 1: never).
        cat_max_ratio: f64 as RATIO = 1.0,
        /// Random brightness, contrast, saturation and hue on training crops (mmseg's
        /// `PhotoMetricDistortion`).
        photometric: bool = false,
        /// Fraction of the training images, chosen from the seed.
        fraction: f64 as RATIO = 1.0,
        /// Learn from the train and val splits together (DOTA `train/` + `val/`, LoveDA
        /// `Train/` + `Val/`), as for numbers an evaluation server scores on the hidden test
        /// split; an `evaluate` stage with `split = "test"` then predicts the test images.
        trainval: bool = false,
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
        /// Learning-rate decay after the warmup: `poly` or `cosine`.
        schedule: LrDecay = LrDecay::Poly,
        /// Exponent of the poly decay.
        poly_power: f64 = 1.0,
        /// Learning rate at the end of the decay.
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
        /// Largest L2 norm of all gradients together, larger ones scaled down to it (unset: no
        /// clipping).
        grad_clip: Option<f64> = None,
        /// Micro-batches each rank's share of a step is split into, their gradients summed
        /// before the update (MAE's `accum_iter`): the global batch stays `batch_size`, the
        /// memory is that of one micro-batch.
        accum_steps: usize = 1,
        /// Recompute each transformer block's activations in the backward pass instead of
        /// keeping them: less memory, about one more forward pass of time, the same numbers.
        activation_checkpointing: bool = false,
        /// Shard the AdamW moments over the data-parallel processes (ZeRO-1): each keeps and
        /// updates only its slice of the flattened parameters, then the updated slices are
        /// exchanged. The same update as unsharded, so it is not in the key.
        optimizer_sharding: bool = false,
        /// `fp32`, or `bf16` autocast over fp32 master weights and optimiser state (unset: bf16
        /// on a GPU, fp32 on a CPU; the device is not in the key).
        precision: Option<Precision> = None,
        /// Threads that read, decode and crop images ahead of the step loop (unset: the
        /// machine's cores shared among its ranks, 1 to 8). The batches are the same for any
        /// count, so it is not in the key.
        loader_threads: Option<usize> = None,
    }
}

impl FinetuneSegParams {
    /// Checks values the types cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::loop_values!(self).check()?;
        crate::fine_tune_values!(self).check()?;
        let vit = self.backbone.vit()?;
        self.vitdet.validate(vit.depth, vit.grid_size())?;
        BackboneInit::resolve(self.init, self.pretrained.as_deref())?;
        self.seg_data()?;
        crate::ensure_param!(self.steps > 0, "steps", "`steps` must be positive");
        crate::ensure_param!(
            self.aux_loss_weight >= 0.0,
            "aux_loss_weight",
            "`aux_loss_weight` must not be negative"
        );
        crate::ensure_param!(
            self.poly_power > 0.0,
            "poly_power",
            "`poly_power` must be positive"
        );
        crate::ensure_param!(
            matches!(self.ratio_range.as_slice(), [lo, hi] if *lo > 0.0 && lo <= hi),
            "ratio_range",
            "`ratio_range` must be two positive numbers [lo, hi] with lo <= hi, e.g. [0.5, 2.0]"
        );
        crate::ensure_param!(
            self.resize_side != Some(0),
            "resize_side",
            "`resize_side` must be positive"
        );
        Ok(())
    }

    /// Checks that the head's batch norms see at least two crops per statistic when the
    /// stage runs as `ranks` data-parallel processes.
    pub fn check_layout(&self, ranks: usize) -> anyhow::Result<()> {
        self.norm.check_layout(self.batch_size, ranks)
    }

    /// The augmentation of each training crop of `crop` pixels (`ignore` the padding label).
    pub fn augment(&self, crop: u32, ignore: u8) -> SegAugment {
        let (lo, hi) = match self.ratio_range.as_slice() {
            [lo, hi] => (*lo, *hi),
            _ => (1.0, 1.0),
        };
        SegAugment {
            crop,
            resize_side: self.resize_side,
            ratio_range: (lo, hi),
            cat_max_ratio: self.cat_max_ratio,
            photometric: self.photometric,
            ignore,
        }
    }

    /// Width of the auxiliary head, None when it is off.
    pub fn aux_head_channels(&self) -> Option<usize> {
        (self.aux_loss_weight > 0.0)
            .then(|| self.aux_channels.unwrap_or((self.head_channels / 2).max(1)))
    }

    /// The dataset the stage reads.
    pub fn seg_data(&self) -> anyhow::Result<SegDataParams> {
        let format = self.format.ok_or_else(|| {
            ParamError::new("format", "`format` is not set").help("use one of loveda, potsdam")
        })?;
        if self.trainval && format == SegFormat::Potsdam {
            return Err(crate::data::seg_samples::trainval_refused("potsdam"));
        }
        Ok(SegDataParams {
            name: resolved_dataset(&self.dataset)?,
            format,
            val_tiles: self.val_tiles.clone(),
            labels: potsdam_labels(self.labels, format)?,
            clutter: false,
            trainval: self.trainval,
        })
    }
}
