//! Parameters of a `mae-pretrain` stage.

use super::backbone::Backbone;
use super::data::resolved_dataset;
use super::mae::MaeConfig;
use super::precision::Precision;

crate::schema! {
    /// Parameters of a `mae-pretrain` stage.
    pub struct MaePretrainParams includes {
        /// The encoder.
        backbone: Backbone,
        /// Decoder, mask ratio and loss.
        mae: MaeConfig,
    } {
        /// The images: a name in the stage's `datasets`, or a needed stage whose output is a
        /// dataset (unset: the only entry of `datasets`); a Million-AID tree or any folder of
        /// images, searched recursively.
        dataset: Option<String> = None,
        /// Optimiser steps.
        steps: u64,
        /// Images per optimiser step.
        batch_size: usize,
        /// Learning rate per 256 images: lr = base_lr × batch_size / 256.
        base_lr: f64 = 1.5e-4,
        /// Learning rate at the end of the cosine.
        min_lr: f64 = 0.0,
        /// Steps of linear warmup.
        warmup_steps: u64 = 0,
        /// AdamW weight decay, not on norms, biases, tokens or position tables.
        weight_decay: f64 = 0.05,
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
        /// Threads that decode and augment images ahead of the step loop (unset: the
        /// machine's cores shared among its ranks, 1 to 8). The batches are the same for any
        /// count, so it is not in the key.
        loader_threads: Option<usize> = None,
    }
}

impl MaePretrainParams {
    /// Checks values the types cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.backbone.vit()?;
        self.mae.validate()?;
        resolved_dataset(&self.dataset)?;
        crate::ensure_param!(self.steps > 0, "steps", "`steps` must be positive");
        crate::ensure_param!(self.base_lr > 0.0, "base_lr", "`base_lr` must be positive");
        crate::loop_values!(self).check()?;
        Ok(())
    }
}
