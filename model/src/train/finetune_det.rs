//! The `finetune-det` stage: ViTDet backbone + Oriented R-CNN on DOTA-format or DIOR-R
//! images, AdamW with layer-wise lr decay, linear warmup and step decay (the 1x schedule:
//! 12 epochs, ×0.1 after epochs 8 and 11), random crops with flips and quarter turns,
//! optionally from an MAE checkpoint; resumable from the work dir.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::det_data::{list_samples, training_crop, CropSettings, DetDataParams, Part};
use super::events::Events;
use super::mae_pretrain::CHECKPOINT_FILE;
use super::pretrained::init_backbone;
use super::rng::{batch_indices, subset_of};
use super::schedule::{Schedule, StepDecaySchedule};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_loop::{loss_summary, run_steps, LoopEnd, LoopSettings};
use crate::arch::VitConfig;
use crate::backbone_init::BackboneInit;
use crate::nn::checkpoint;
use crate::nn::oriented_rcnn::{OrientedRcnn, OrientedRcnnConfig};
use crate::nn::vitdet::VitDetConfig;
use crate::protocol::StageSpec;

/// File with the detector description an `evaluate` stage rebuilds the model from.
pub const DETECTOR_FILE: &str = "detector.json";

fn default_lr() -> f64 {
    1e-4
}
fn default_weight_decay() -> f64 {
    0.05
}
fn default_layer_decay() -> f64 {
    0.75
}
fn default_one() -> f64 {
    1.0
}
fn default_epochs() -> u64 {
    12
}
fn default_log_every() -> u64 {
    1
}
fn default_true() -> bool {
    true
}

/// The detector's architecture and class names, saved beside its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetModelSpec {
    /// Backbone; `image_size` is the input side.
    pub model: VitConfig,
    /// Window attention and global stages.
    pub vitdet: VitDetConfig,
    /// Detector settings.
    pub detector: OrientedRcnnConfig,
    /// Class names, in label order.
    pub classes: Vec<String>,
}

impl DetModelSpec {
    /// Builds the detector under the root of `vs`.
    pub fn build(&self, vs: &VarStore) -> OrientedRcnn {
        OrientedRcnn::new(&vs.root(), &self.model, &self.vitdet, &self.detector)
    }
}

/// Parameters of a `finetune-det` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneDetParams {
    /// Backbone; `image_size` is the training crop (1024 for DOTA); `drop_path` is the
    /// stochastic depth rate.
    pub model: VitConfig,
    /// Window attention and global stages.
    #[serde(default)]
    pub vitdet: VitDetConfig,
    /// Detector settings (`num_classes` comes from the dataset).
    #[serde(default)]
    pub detector: Option<serde_json::Value>,
    /// The dataset.
    pub data: DetDataParams,
    /// Fraction of the training images used, chosen from the seed.
    #[serde(default = "default_one")]
    pub fraction: f64,
    /// Name of a needed `mae-pretrain` stage whose checkpoint initialises the backbone.
    #[serde(default)]
    pub pretrained: Option<String>,
    /// `pretrained` (every backbone weight from `pretrained`, default when it is given) or
    /// `scratch` (random weights, on purpose).
    #[serde(default)]
    pub init: Option<BackboneInit>,
    /// Training epochs (used when `steps` is not given).
    #[serde(default = "default_epochs")]
    pub epochs: u64,
    /// Optimiser steps (overrides `epochs`).
    #[serde(default)]
    pub steps: Option<u64>,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Steps of linear warmup from a third of `lr`.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Steps after which the learning rate drops ×0.1 (default: at 8/12 and 11/12 of training).
    #[serde(default)]
    pub lr_steps: Option<Vec<u64>>,
    /// AdamW weight decay (not on norms, biases, tokens, position tables).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Layer-wise lr decay per stage from the top.
    #[serde(default = "default_layer_decay")]
    pub layer_decay: f64,
    /// Random horizontal and vertical flips.
    #[serde(default = "default_true")]
    pub flips: bool,
    /// Random quarter turns.
    #[serde(default = "default_true")]
    pub rotate90: bool,
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

impl FinetuneDetParams {
    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.model.validate().context("params.model")?;
        anyhow::ensure!(
            self.fraction > 0.0 && self.fraction <= 1.0,
            "params.fraction must be in (0, 1], got {}",
            self.fraction
        );
        anyhow::ensure!(
            self.steps != Some(0) && self.epochs > 0,
            "params.steps and params.epochs must be positive"
        );
        anyhow::ensure!(self.batch_size > 0, "params.batch_size must be positive");
        anyhow::ensure!(self.lr > 0.0, "params.lr must be positive");
        anyhow::ensure!(
            self.layer_decay > 0.0 && self.layer_decay <= 1.0,
            "params.layer_decay must be in (0, 1]"
        );
        anyhow::ensure!(self.log_every > 0, "params.log_every must be positive");
        anyhow::ensure!(
            self.model
                .image_size
                .is_multiple_of(2 * self.model.patch_size),
            "params.model.image_size must be a multiple of twice the patch size"
        );
        self.data.class_names()?;
        BackboneInit::resolve(self.init, self.pretrained.as_deref())?;
        self.model_spec()?
            .detector
            .validate()
            .context("params.detector")
    }

    /// The architecture part, with the dataset's classes.
    pub fn model_spec(&self) -> anyhow::Result<DetModelSpec> {
        let classes = self.data.class_names()?;
        let mut detector = self
            .detector
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        let fields = detector
            .as_object_mut()
            .context("params.detector must be a table")?;
        anyhow::ensure!(
            !fields.contains_key("num_classes"),
            "params.detector.num_classes comes from the dataset: leave it out"
        );
        fields.insert("num_classes".into(), classes.len().into());
        Ok(DetModelSpec {
            model: self.model.clone(),
            vitdet: self.vitdet.clone(),
            detector: serde_json::from_value(detector).context("params.detector")?,
            classes,
        })
    }
}

/// Runs (or resumes) the stage; `stop_after` ends the call after that many steps with a
/// resume checkpoint. Writes the weights and [`DETECTOR_FILE`] into `out_dir`.
pub fn run(
    spec: &StageSpec,
    params: &FinetuneDetParams,
    out_dir: &Path,
    events: &mut Events,
    stop_after: Option<u64>,
) -> anyhow::Result<Outcome> {
    let root = dataset_root(spec, &params.data.name)?;
    let all = list_samples(root, &params.data, Part::Train)?;
    let samples = subset_of(spec.seed, &all, params.fraction);
    let steps_per_epoch = samples.len().div_ceil(params.batch_size) as u64;
    let total = params.steps.unwrap_or(params.epochs * steps_per_epoch);
    let drops = params
        .lr_steps
        .clone()
        .unwrap_or_else(|| vec![total * 8 / 12, total * 11 / 12]);
    events.log(
        "info",
        format!(
            "fine-tuning a detector on {} of {} training images for {total} steps",
            samples.len(),
            all.len()
        ),
    );

    let setup = TrainingSetup::new(spec)?;
    let model_spec = params.model_spec()?;
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
        schedule: Schedule::StepDecay(StepDecaySchedule {
            peak_lr: params.lr,
            warmup_steps: params.warmup_steps,
            drops,
            total_steps: total,
        }),
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
    };
    let crop = CropSettings {
        size: params.model.image_size as u32,
        flips: params.flips,
        rotate: params.rotate90,
    };
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let mut images = Vec::new();
        let mut targets = Vec::new();
        for i in batch_indices(spec.seed, samples.len(), params.batch_size, step.index) {
            let (image, target) = training_crop(&samples[i], &crop, &mut step.augment)?;
            images.push(image);
            targets.push(target);
        }
        let images = Tensor::stack(&images, 0).to_device(setup.device);
        Ok(model.losses(&images, &targets).total())
    })?;
    let losses = match end {
        LoopEnd::Finished(losses) => losses,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    fs_err::create_dir_all(out_dir)?;
    checkpoint::save(&setup.vs, &out_dir.join(CHECKPOINT_FILE))?;
    fs_err::write(
        out_dir.join(DETECTOR_FILE),
        serde_json::to_vec_pretty(&model_spec)?,
    )?;
    let mut metrics = loss_summary(&losses);
    // The detector stage reports the smoothed first and last losses only.
    metrics.remove("loss_final");
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("steps".to_string(), total as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(total));
    }
    Ok(Outcome::Finished(metrics))
}
