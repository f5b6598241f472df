//! The `finetune-seg` stage: ViTDet backbone + UperNet on LoveDA or Potsdam crops, AdamW with
//! layer-wise lr decay and a warmup + cosine schedule, optionally from an MAE checkpoint, on a
//! deterministic fraction of the training images; resumable from the work dir.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::events::Events;
use super::mae_pretrain::CHECKPOINT_FILE;
use super::pretrained::init_backbone;
use super::rng::{batch_indices, subset_of};
use super::schedule::{CosineSchedule, Schedule};
use super::seg_data::{list_samples, random_crop, Part, SegDataParams, IGNORE_INDEX};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_loop::{loss_summary, run_steps, LoopEnd, LoopSettings};
use crate::arch::VitConfig;
use crate::backbone_init::BackboneInit;
use crate::nn::checkpoint;
use crate::nn::segmenter::Segmenter;
use crate::nn::vitdet::VitDetConfig;
use crate::protocol::StageSpec;

/// File with the model description an `evaluate` stage rebuilds the segmenter from.
pub const MODEL_FILE: &str = "model.json";

fn default_head_channels() -> usize {
    512
}
fn default_lr() -> f64 {
    6e-5
}
fn default_weight_decay() -> f64 {
    0.01
}
fn default_layer_decay() -> f64 {
    0.9
}
fn default_fraction() -> f64 {
    1.0
}
fn default_log_every() -> u64 {
    1
}

/// The segmenter's architecture, saved beside its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegModelSpec {
    /// Backbone; `image_size` is the crop size.
    pub model: VitConfig,
    /// Window attention and global stages.
    #[serde(default)]
    pub vitdet: VitDetConfig,
    /// UperNet width.
    #[serde(default = "default_head_channels")]
    pub head_channels: usize,
    /// Classes predicted.
    pub num_classes: usize,
}

impl SegModelSpec {
    /// Builds the segmenter under the root of `vs`.
    pub fn build(&self, vs: &VarStore) -> Segmenter {
        Segmenter::new(
            &vs.root(),
            &self.model,
            &self.vitdet,
            self.head_channels as i64,
            self.num_classes as i64,
        )
    }
}

/// Parameters of a `finetune-seg` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneSegParams {
    /// Backbone; `image_size` is the training crop size.
    pub model: VitConfig,
    /// Window attention and global stages.
    #[serde(default)]
    pub vitdet: VitDetConfig,
    /// UperNet width.
    #[serde(default = "default_head_channels")]
    pub head_channels: usize,
    /// The dataset.
    pub data: SegDataParams,
    /// Fraction of the training images used, chosen from the seed.
    #[serde(default = "default_fraction")]
    pub fraction: f64,
    /// Name of a needed `mae-pretrain` stage whose checkpoint initialises the backbone.
    #[serde(default)]
    pub pretrained: Option<String>,
    /// `pretrained` (every backbone weight from `pretrained`, default when it is given) or
    /// `scratch` (random weights, on purpose).
    #[serde(default)]
    pub init: Option<BackboneInit>,
    /// Optimiser steps.
    pub steps: u64,
    /// Crops per step.
    pub batch_size: usize,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Final learning rate.
    #[serde(default)]
    pub min_lr: f64,
    /// Steps of linear warmup.
    #[serde(default)]
    pub warmup_steps: u64,
    /// AdamW weight decay (not on norms, biases, tokens, position tables).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Layer-wise lr decay per stage from the top.
    #[serde(default = "default_layer_decay")]
    pub layer_decay: f64,
    /// Steps between resume checkpoints (0: only when stopped).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Steps between progress events.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Recompute each transformer block's activations in the backward pass instead of
    /// keeping them: less memory, about one more forward pass of time, the same numbers.
    #[serde(default)]
    pub activation_checkpointing: bool,
}

impl FinetuneSegParams {
    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.model.validate().context("params.model")?;
        anyhow::ensure!(
            self.fraction > 0.0 && self.fraction <= 1.0,
            "params.fraction must be in (0, 1], got {}",
            self.fraction
        );
        anyhow::ensure!(self.steps > 0, "params.steps must be positive");
        anyhow::ensure!(self.batch_size > 0, "params.batch_size must be positive");
        anyhow::ensure!(self.lr > 0.0, "params.lr must be positive");
        anyhow::ensure!(
            self.layer_decay > 0.0 && self.layer_decay <= 1.0,
            "params.layer_decay must be in (0, 1]"
        );
        anyhow::ensure!(self.log_every > 0, "params.log_every must be positive");
        anyhow::ensure!(
            self.vitdet.window_size > 0,
            "params.vitdet.window_size must be positive"
        );
        BackboneInit::resolve(self.init, self.pretrained.as_deref())?;
        if let Some(stages) = &self.vitdet.global_stages {
            anyhow::ensure!(
                stages.iter().all(|&s| s < self.model.depth),
                "params.vitdet.global_stages must be below depth {}",
                self.model.depth
            );
        }
        Ok(())
    }

    /// The architecture part.
    pub fn model_spec(&self) -> SegModelSpec {
        SegModelSpec {
            model: self.model.clone(),
            vitdet: self.vitdet.clone(),
            head_channels: self.head_channels,
            num_classes: self.data.format.num_classes(),
        }
    }
}

/// Runs (or resumes) the stage; `stop_after` ends the call after that many steps with a
/// resume checkpoint.
pub fn run(
    spec: &StageSpec,
    params: &FinetuneSegParams,
    out_dir: &Path,
    events: &mut Events,
    stop_after: Option<u64>,
) -> anyhow::Result<Outcome> {
    let root = dataset_root(spec, &params.data.name)?;
    let all = list_samples(root, &params.data, Part::Train)?;
    let samples = subset_of(spec.seed, &all, params.fraction);
    events.log(
        "info",
        format!(
            "fine-tuning on {} of {} training images (fraction {})",
            samples.len(),
            all.len(),
            params.fraction
        ),
    );

    let setup = TrainingSetup::new(spec)?;
    let model_spec = params.model_spec();
    let mut model = model_spec.build(&setup.vs);
    if params.activation_checkpointing {
        model.backbone.vit.checkpoint_activations(&setup.tape);
    }
    init_backbone(
        spec,
        params.init,
        params.pretrained.as_deref(),
        &setup.vs,
        events,
    )?;
    let mut opt = setup.fine_tuning_optimizer(
        params.weight_decay,
        params.layer_decay,
        model.backbone.depth(),
    );
    let settings = LoopSettings {
        schedule: Schedule::Cosine(CosineSchedule {
            peak_lr: params.lr,
            min_lr: params.min_lr,
            warmup_steps: params.warmup_steps,
            total_steps: params.steps,
        }),
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
    };
    let crop = params.model.image_size as u32;
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in batch_indices(spec.seed, samples.len(), params.batch_size, step.index) {
            let (image, label) = samples[i].load()?;
            let (img, lab) = random_crop(&image, &label, crop, &mut step.augment);
            images.push(img);
            labels.push(lab);
        }
        let images = Tensor::stack(&images, 0).to_device(setup.device);
        let labels = Tensor::stack(&labels, 0).to_device(setup.device);
        Ok(model.loss(
            &model.forward_t(&images, true),
            &labels,
            i64::from(IGNORE_INDEX),
        ))
    })?;
    let losses = match end {
        LoopEnd::Finished(losses) => losses,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    fs_err::create_dir_all(out_dir)?;
    checkpoint::save(&setup.vs, &out_dir.join(CHECKPOINT_FILE))?;
    fs_err::write(
        out_dir.join(MODEL_FILE),
        serde_json::to_vec_pretty(&model_spec)?,
    )?;
    let mut metrics = loss_summary(&losses);
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("params".to_string(), params.model.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
