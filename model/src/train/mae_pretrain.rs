//! The `mae-pretrain` stage: MAE on a folder of images (or generated scenes), AdamW with a
//! warmup + cosine schedule, resumable from the work dir.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::events::Events;
use super::images::ImageFolder;
use super::optim::{AdamW, AdamWConfig};
use super::params::decay_groups;
use super::resume::{self, ResumeState};
use super::rng::{batch_indices, seed_torch_for_step};
use super::schedule::{scaled_lr, CosineSchedule};
use super::stage::{parse_device, run_digest, seed_init, stop_requested, Outcome};
use crate::arch::VitConfig;
use crate::data::formats::millionaid;
use crate::nn::checkpoint;
use crate::nn::layers::scalar;
use crate::nn::mae::{MaeConfig, MaskedAutoencoder};
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
    let root = spec.datasets.get(&data.name).with_context(|| {
        format!(
            "params.data.name `{}` is not in stage.json `datasets`",
            data.name
        )
    })?;
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

    fs_err::create_dir_all(&spec.work_dir)?;
    let digest = run_digest(spec);
    let mut state = match resume::load(&spec.work_dir, &digest, &vs, &mut opt)? {
        Some(state) => {
            events.log(
                "info",
                format!(
                    "resuming from step {} ({})",
                    state.step,
                    spec.work_dir.display()
                ),
            );
            state
        }
        None => ResumeState {
            step: 0,
            run_digest: digest,
            losses: Vec::new(),
        },
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

    let size = params.model.image_size as i64;
    let started = Instant::now();
    let first_step = state.step;
    while state.step < params.steps {
        let step = state.step;
        seed_torch_for_step(spec.seed, step);
        let batch = images
            .batch(
                &batch_indices(spec.seed, images.paths.len(), params.batch_size, step),
                size,
            )?
            .to_device(device);
        opt.zero_grad();
        let output = model.forward(&batch, true);
        let loss = scalar(&output.loss);
        anyhow::ensure!(
            loss.is_finite(),
            "loss is {loss} at step {}: training diverged",
            step + 1
        );
        output.loss.backward();
        opt.step(schedule.lr(step));
        state.step += 1;
        state.losses.push(loss);

        if state.step % params.log_every == 0 || state.step == params.steps {
            let rate = (state.step - first_step) as f64 * params.batch_size as f64
                / started.elapsed().as_secs_f64().max(1e-9);
            events.emit(&crate::protocol::Event::Progress {
                step: state.step,
                total: params.steps,
                loss: Some(loss),
                items_per_s: Some(rate),
            });
        }
        let periodic = params.checkpoint_every > 0 && state.step % params.checkpoint_every == 0;
        let stopping = (stop_after.is_some_and(|n| state.step - first_step >= n)
            || stop_requested())
            && state.step < params.steps;
        if periodic || stopping {
            resume::save(&spec.work_dir, &vs, &opt, &state)?;
        }
        if stopping {
            events.log(
                "info",
                format!(
                    "stopping after step {} as requested; resume checkpoint saved",
                    state.step
                ),
            );
            return Ok(Outcome::Stopped(state.step));
        }
    }

    fs_err::create_dir_all(out_dir)?;
    checkpoint::save(&vs, &out_dir.join(CHECKPOINT_FILE))?;
    let metrics = summarize(&state.losses, params);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}

/// Final metrics: mean loss over the first and last tenth of the steps, and the final loss.
fn summarize(losses: &[f64], params: &MaePretrainParams) -> BTreeMap<String, f64> {
    let window = (losses.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "loss_first".into(),
        mean(&losses[..window.min(losses.len())]),
    );
    metrics.insert(
        "loss_last".into(),
        mean(&losses[losses.len().saturating_sub(window)..]),
    );
    metrics.insert("loss_final".into(), *losses.last().unwrap_or(&f64::NAN));
    metrics.insert("steps".into(), losses.len() as f64);
    metrics.insert("params".into(), params.model.param_count() as f64);
    metrics
}
