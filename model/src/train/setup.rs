//! What every training stage builds before its first step: the data-parallel ranks it joins
//! (when launched as several processes), the device, the variable store (torch seeded for
//! initialisation), the activation-checkpointing tape, and AdamW over the stage's parameter
//! groups.

use tch::nn::VarStore;
use tch::Device;

use super::optim::{AdamW, AdamWConfig};
use super::params::{decay_groups, layer_decay_groups};
use super::replicas::Replicas;
use super::stage::{parse_device, seed_init};
use crate::nn::checkpointing::Tape;
use crate::protocol::StageSpec;

/// A stage's ranks, device, variables and checkpointing tape.
#[derive(Debug)]
pub struct TrainingSetup {
    /// The data-parallel ranks (one when the stage runs as a single process): the step loop
    /// averages gradients over them, and only the leader writes outputs.
    pub replicas: Replicas,
    /// Where the model runs.
    pub device: Device,
    /// The model's variables (empty until the model is built under `vs.root()`).
    pub vs: VarStore,
    /// Records the blocks that run checkpointed; the step loop replays it after the loss's
    /// backward pass (nothing to replay when no block is checkpointed).
    pub tape: Tape,
}

impl TrainingSetup {
    /// Joins the data-parallel ranks the environment describes, parses the stage's device
    /// (moved by the local rank on CUDA) and seeds torch for initialisation from the run
    /// seed, so the model built next starts from the same weights in every run of the stage.
    pub fn new(spec: &StageSpec) -> anyhow::Result<Self> {
        let replicas = Replicas::from_env()?;
        let device = replicas.device(parse_device(&spec.device)?);
        seed_init(spec.seed);
        Ok(TrainingSetup {
            replicas,
            device,
            vs: VarStore::new(device),
            tape: Tape::default(),
        })
    }

    /// AdamW as the MAE recipe uses it: betas (0.9, 0.95), weight decay except on norms,
    /// biases, tokens and position tables.
    pub fn pretraining_optimizer(&self, weight_decay: f64) -> AdamW {
        AdamW::new(decay_groups(&self.vs, weight_decay), AdamWConfig::default())
    }

    /// AdamW as ViTDet fine-tuning uses it: betas (0.9, 0.999) and layer-wise lr decay over
    /// the `depth` stages of the backbone.
    pub fn fine_tuning_optimizer(
        &self,
        weight_decay: f64,
        layer_decay: f64,
        depth: usize,
    ) -> AdamW {
        AdamW::new(
            layer_decay_groups(&self.vs, weight_decay, layer_decay, depth),
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        )
    }
}
