//! Parameters of a `finetune-det` stage.

use super::backbone::Backbone;
use super::data::{resolved_dataset, DetDataParams, DetFormat, DOTA_RELEASES};
use super::detector::DetectorParams;
use super::init::BackboneInit;
use super::precision::Precision;
use super::types::RATIO;
use super::vitdet::VitDetConfig;
use crate::params::ParamError;

crate::schema! {
    /// Parameters of a `finetune-det` stage: ViTDet backbone + Oriented R-CNN, the 1x schedule
    /// (linear warmup, ×0.1 steps).
    pub struct FinetuneDetParams includes {
        /// The backbone; `image_size` is the training crop (1024 for DOTA).
        backbone: Backbone,
        /// Window attention and global stages.
        vitdet: VitDetConfig,
        /// The detector.
        detector: DetectorParams,
    } {
        /// The data: a name in the stage's `datasets`, or a needed stage whose output is a
        /// dataset (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// Detection layout, dota or dior-r (unset: the dataset's `format`).
        format: Option<DetFormat> = None,
        /// DOTA release whose classes are used (synthetic DOTA is v2.0).
        version: String as DOTA_RELEASES = "v1.0".to_string(),
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
        /// Training epochs when `steps` is not set (12: the 1x schedule).
        epochs: u64 = 12,
        /// Optimiser steps, overriding `epochs`.
        steps: Option<u64> = None,
        /// Images per optimiser step.
        batch_size: usize,
        /// Peak learning rate.
        lr: f64 = 1e-4,
        /// Steps of linear warmup from a third of `lr`.
        warmup_steps: u64 = 0,
        /// Steps after which the learning rate drops ×0.1 (unset: 8/12 and 11/12 of training).
        lr_steps: Option<Vec<u64>> = None,
        /// AdamW weight decay, not on norms, biases, tokens or position tables.
        weight_decay: f64 = 0.05,
        /// Layer-wise learning-rate decay per block stage from the top.
        layer_decay: f64 as RATIO = 0.75,
        /// Random horizontal and vertical flips.
        flips: bool = true,
        /// Random quarter turns.
        rotate90: bool = true,
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

impl FinetuneDetParams {
    /// Checks values the types cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::loop_values!(self).check()?;
        crate::fine_tune_values!(self).check()?;
        let vit = self.backbone.vit()?;
        self.vitdet.validate(vit.depth, vit.grid_size())?;
        BackboneInit::resolve(self.init, self.pretrained.as_deref())?;
        self.detector.validate()?;
        self.det_data()?.class_names()?;
        crate::ensure_param!(
            self.steps != Some(0),
            "steps",
            "`steps` and `epochs` must be positive"
        );
        crate::ensure_param!(
            self.epochs > 0,
            "epochs",
            "`steps` and `epochs` must be positive"
        );
        crate::ensure_param!(
            vit.image_size.is_multiple_of(2 * vit.patch_size),
            "image_size",
            "`image_size` ({}) must be a multiple of twice the patch size ({})",
            vit.image_size,
            vit.patch_size
        );
        Ok(())
    }

    /// The dataset the stage reads.
    pub fn det_data(&self) -> anyhow::Result<DetDataParams> {
        let format = self.format.ok_or_else(|| {
            ParamError::new("format", "`format` is not set").help("use one of dota, dior-r")
        })?;
        if self.trainval && format == DetFormat::DiorR {
            return Err(crate::data::seg_samples::trainval_refused("dior-r"));
        }
        Ok(DetDataParams {
            name: resolved_dataset(&self.dataset)?,
            format,
            version: self.version.clone(),
            trainval: self.trainval,
        })
    }
}
