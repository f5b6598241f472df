//! What every training stage builds before its first step: the data-parallel ranks it joins
//! (when launched as several processes), the device, the variable store (torch seeded for
//! initialisation), the activation-checkpointing tape, and AdamW over the stage's parameter
//! groups; and what it writes after its last step.

use std::path::Path;

use serde::Serialize;
use tch::nn::VarStore;
use tch::Device;

use super::events::Events;
use super::mae_pretrain::CHECKPOINT_FILE;
use super::optim::{AdamW, AdamWConfig, ParamGroup};
use super::params::{decay_groups, layer_decay_groups};
use super::pretrained::init_backbone;
use super::replicas::Replicas;
use super::stage::{parse_device, seed_init};
use crate::nn::checkpoint;
use crate::nn::checkpointing::Tape;
use crate::nn::vitdet::VitDetBackbone;
use crate::params::init::BackboneInit;
use crate::params::{FinetuneDetParams, FinetuneSegParams};
use crate::protocol::StageSpec;

/// How a fine-tuning stage starts its backbone and optimiser, as its parameters say.
#[derive(Debug, Clone, Copy)]
pub struct FineTuningStart<'a> {
    /// `pretrained` or `scratch` (unset: pretrained when a pretrained stage is given).
    pub init: Option<BackboneInit>,
    /// The needed mae-pretrain stage whose checkpoint initialises the backbone.
    pub pretrained: Option<&'a str>,
    /// Recompute each block's activations in the backward pass.
    pub activation_checkpointing: bool,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay per block stage from the top.
    pub layer_decay: f64,
    /// Shard the AdamW moments over the data-parallel ranks (ZeRO-1).
    pub optimizer_sharding: bool,
}

/// Reads a [`FineTuningStart`] from each fine-tuning stage's parameters (same field names).
macro_rules! fine_tuning_start_from {
    ($($params:ty),*) => {$(
        impl<'a> From<&'a $params> for FineTuningStart<'a> {
            fn from(params: &'a $params) -> Self {
                FineTuningStart {
                    init: params.init,
                    pretrained: params.pretrained.as_deref(),
                    activation_checkpointing: params.activation_checkpointing,
                    weight_decay: params.weight_decay,
                    layer_decay: params.layer_decay,
                    optimizer_sharding: params.optimizer_sharding,
                }
            }
        }
    )*};
}

fine_tuning_start_from!(FinetuneDetParams, FinetuneSegParams);

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
    /// biases, tokens and position tables; its moments sharded over the ranks when `sharding`.
    pub fn pretraining_optimizer(&self, weight_decay: f64, sharding: bool) -> AdamW {
        self.optimizer(
            decay_groups(&self.vs, weight_decay),
            AdamWConfig::default(),
            sharding,
        )
    }

    /// AdamW as ViTDet fine-tuning uses it: betas (0.9, 0.999) and layer-wise lr decay over
    /// the `depth` stages of the backbone; its moments sharded over the ranks when
    /// `sharding`.
    pub fn fine_tuning_optimizer(
        &self,
        weight_decay: f64,
        layer_decay: f64,
        depth: usize,
        sharding: bool,
    ) -> AdamW {
        self.optimizer(
            layer_decay_groups(&self.vs, weight_decay, layer_decay, depth),
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            sharding,
        )
    }

    /// AdamW over `groups`: this rank's ZeRO-1 shard when `sharding`, else all of it.
    fn optimizer(&self, groups: Vec<ParamGroup>, config: AdamWConfig, sharding: bool) -> AdamW {
        if sharding {
            AdamW::sharded(
                groups,
                config,
                self.replicas.rank(),
                self.replicas.world_size(),
            )
        } else {
            AdamW::new(groups, config)
        }
    }

    /// Before a fine-tuning stage's first step: turns on activation checkpointing when asked,
    /// initialises `backbone` (built under `self.vs`) from the pretrained checkpoint or keeps
    /// its random weights on purpose, and returns the fine-tuning AdamW over the model.
    pub fn start_fine_tuning(
        &self,
        spec: &StageSpec,
        backbone: &mut VitDetBackbone,
        start: FineTuningStart<'_>,
        events: &mut Events,
    ) -> anyhow::Result<AdamW> {
        if start.activation_checkpointing {
            backbone.vit.checkpoint_activations(&self.tape);
        }
        init_backbone(spec, start.init, start.pretrained, &self.vs, events)?;
        Ok(self.fine_tuning_optimizer(
            start.weight_decay,
            start.layer_decay,
            backbone.depth(),
            start.optimizer_sharding,
        ))
    }

    /// On the leader rank only (the others hold the same weights): writes the trained
    /// variables to `out_dir/CHECKPOINT_FILE`.
    pub fn save_checkpoint(&self, out_dir: &Path) -> anyhow::Result<()> {
        if self.replicas.is_leader() {
            fs_err::create_dir_all(out_dir)?;
            checkpoint::save(&self.vs, &out_dir.join(CHECKPOINT_FILE))?;
        }
        Ok(())
    }

    /// [`Self::save_checkpoint`], and beside it `out_dir/description_file` holding the model's
    /// description as JSON (what an evaluation stage rebuilds the model from).
    pub fn save_trained_model(
        &self,
        out_dir: &Path,
        description_file: &str,
        description: &impl Serialize,
    ) -> anyhow::Result<()> {
        self.save_checkpoint(out_dir)?;
        if self.replicas.is_leader() {
            fs_err::write(
                out_dir.join(description_file),
                serde_json::to_vec_pretty(description)?,
            )?;
        }
        Ok(())
    }
}
