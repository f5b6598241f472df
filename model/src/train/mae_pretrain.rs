//! The `mae-pretrain` stage: MAE on a folder of images (or generated scenes), AdamW with a
//! warmup + cosine schedule, resumable from the work dir.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::events::Events;
use super::images::ImageFolder;
use super::optim::{AdamW, AdamWConfig};
use super::params::decay_groups;
use super::rng::batch_indices;
use super::schedule::{scaled_lr, CosineSchedule};
use super::stage::{parse_device, seed_init, Outcome};
use super::stage_inputs::dataset_root;
use super::step_loop::{loss_summary, run_steps, LoopEnd, LoopSettings};
use crate::arch::VitConfig;
use crate::autocast::Autocast;
use crate::data::formats::millionaid;
use crate::nn::checkpoint;
use crate::nn::mae::{MaeConfig, MaskedAutoencoder};
use crate::precision::Precision;
use crate::protocol::StageSpec;

/// File name of the pretrained weights in the stage's output dir.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

fn default_base_lr() -> f64 {
    1.5e-4
}
fn default_weight_decay() -> f64 {
    0.05
}

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDataParams {
    /// Key in `stage.json`'s `datasets`: a Million-AID tree (or any folder of images,
    /// searched recursively); `rsfm synth millionaid` generates one.
    pub name: String,
}

/// Parameters of a `mae-pretrain` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaePretrainParams {
    /// The encoder.
    pub model: VitConfig,
    /// Decoder, mask ratio and loss.
    #[serde(default)]
    pub mae: MaeConfig,
    /// Training images.
    pub data: ImageDataParams,
    /// Optimiser steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Learning rate per 256 images (MAE's scaling rule: lr = base_lr × batch / 256).
    #[serde(default = "default_base_lr")]
    pub base_lr: f64,
    /// Learning rate at the end of the cosine.
    #[serde(default)]
    pub min_lr: f64,
    /// Steps of linear warmup.
    #[serde(default)]
    pub warmup_steps: u64,
    /// AdamW weight decay (not on norms, biases, tokens, position tables).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Steps between resume checkpoints (0: only at the end of an interrupted run).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Steps between progress events.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// `fp32` or `bf16` (autocast over fp32 master weights); default bf16 on cuda, fp32 on cpu.
    #[serde(default)]
    pub precision: Option<Precision>,
}

fn default_log_every() -> u64 {
    1
}

impl MaePretrainParams {
    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.model.validate().context("params.model")?;
        self.mae.validate().context("params.mae")?;
        anyhow::ensure!(self.steps > 0, "params.steps must be positive");
        anyhow::ensure!(self.batch_size > 0, "params.batch_size must be positive");
        anyhow::ensure!(self.base_lr > 0.0, "params.base_lr must be positive");
        anyhow::ensure!(self.log_every > 0, "params.log_every must be positive");
        Ok(())
    }
}

fn image_folder(spec: &StageSpec, data: &ImageDataParams) -> anyhow::Result<ImageFolder> {
    let root = dataset_root(spec, &data.name)?;
    let paths = millionaid::list_images(root)?
        .into_iter()
        .map(|s| s.path)
        .collect();
    Ok(ImageFolder { paths })
}

/// Runs (or resumes) the stage. `stop_after` ends the call after that many completed steps
/// with a resume checkpoint, as a preemption would.
pub fn run(
    spec: &StageSpec,
    params: &MaePretrainParams,
    out_dir: &Path,
    events: &mut Events,
    stop_after: Option<u64>,
) -> anyhow::Result<Outcome> {
    let device = parse_device(&spec.device)?;
    let images = image_folder(spec, &params.data)?;
    seed_init(spec.seed);
    let vs = VarStore::new(device);
    let model = MaskedAutoencoder::new(&vs.root(), &params.model, &params.mae);
    let mut opt = AdamW::new(
        decay_groups(&vs, params.weight_decay),
        AdamWConfig::default(),
    );
    let peak_lr = scaled_lr(params.base_lr, params.batch_size);
    let schedule = CosineSchedule {
        peak_lr,
        min_lr: params.min_lr,
        warmup_steps: params.warmup_steps,
        total_steps: params.steps,
    };

    events.log(
        "info",
        format!(
            "MAE on {} images, {} params, peak lr {peak_lr:.3e}, device {}",
            images.paths.len(),
            params.model.param_count(),
            spec.device
        ),
    );
    let settings = LoopSettings {
        schedule,
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
    };
    let size = params.model.image_size as i64;
    let precision = Precision::resolve(params.precision, &spec.device);
    let end = run_steps(spec, &vs, &mut opt, &settings, events, |step| {
        let indices = batch_indices(spec.seed, images.paths.len(), params.batch_size, step);
        let batch = images.batch(&indices, size)?.to_device(device);
        // Autocast covers the forward pass only; the guard ends before backward.
        let _autocast = Autocast::for_precision(precision, device)?;
        Ok(model.forward(&batch, true).loss)
    })?;
    let losses = match end {
        LoopEnd::Finished(losses) => losses,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    fs_err::create_dir_all(out_dir)?;
    checkpoint::save(&vs, &out_dir.join(CHECKPOINT_FILE))?;
    let mut metrics = loss_summary(&losses);
    metrics.insert("steps".into(), losses.len() as f64);
    metrics.insert("params".into(), params.model.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
