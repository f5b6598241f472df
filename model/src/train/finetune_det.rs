//! The `finetune-det` stage: ViTDet backbone + Oriented R-CNN on DOTA-format or DIOR-R
//! images, AdamW with layer-wise lr decay, linear warmup and step decay (the 1x schedule:
//! 12 epochs, ×0.1 after epochs 8 and 11), random crops with flips and quarter turns,
//! optionally from an MAE checkpoint; resumable from the work dir.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::det_data::{list_samples, training_crop, CropSettings, Part};
use super::events::Events;
use super::mae_pretrain::CHECKPOINT_FILE;
use super::optim::{AdamW, AdamWConfig};
use super::params::layer_decay_groups;
use super::resume::{self, ResumeState};
use super::rng::{batch_indices, seed_torch_for_step, stream, subset_of, SplitMix64};
use super::stage::{parse_device, run_digest, seed_init, stop_requested, Outcome};
use super::stage_inputs::{dataset_root, input_dir};
use super::step_loop::loss_summary;
use crate::arch::VitConfig;
use crate::nn::checkpoint;
use crate::nn::layers::scalar;
use crate::nn::oriented_rcnn::{OrientedRcnn, OrientedRcnnConfig};
use crate::nn::vitdet::VitDetConfig;
use crate::params::FinetuneDetParams;
use crate::protocol::{Event, StageSpec};

/// File with the detector description an `evaluate` stage rebuilds the model from.
pub const DETECTOR_FILE: &str = "detector.json";

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

/// The detector a `finetune-det` stage trains, with the dataset's classes.
pub fn model_spec(params: &FinetuneDetParams) -> anyhow::Result<DetModelSpec> {
    let classes = params.det_data()?.class_names()?;
    let detector = OrientedRcnnConfig::from_params(classes.len(), &params.detector);
    detector.validate().context("params.detector")?;
    Ok(DetModelSpec {
        model: params.backbone.vit()?,
        vitdet: params.vitdet.clone(),
        detector,
        classes,
    })
}

/// Learning rate at `step`: linear warmup from a third of `peak`, then ×0.1 after each of
/// `drops`.
pub fn step_lr(peak: f64, warmup: u64, drops: &[u64], step: u64) -> f64 {
    if step < warmup {
        return peak * (1.0 / 3.0 + 2.0 / 3.0 * step as f64 / warmup as f64);
    }
    peak * 0.1f64.powi(drops.iter().filter(|&&d| step >= d).count() as i32)
}

fn load_pretrained(
    spec: &StageSpec,
    name: &str,
    vs: &VarStore,
    events: &mut Events,
) -> anyhow::Result<()> {
    let dir = input_dir(spec, "params.pretrained", name)?;
    let file = dir.join(CHECKPOINT_FILE);
    let tensors = checkpoint::with_prefix(checkpoint::read_tensors(&file)?, "backbone.");
    let report = checkpoint::load_from(vs, tensors)
        .with_context(|| format!("loading {}", file.display()))?;
    events.log(
        "info",
        format!("loaded {}: {}", file.display(), report.summary()),
    );
    Ok(())
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
    let device = parse_device(&spec.device)?;
    let data = params.det_data()?;
    let root = dataset_root(spec, &data.name)?;
    let all = list_samples(root, &data, Part::Train)?;
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

    seed_init(spec.seed);
    let vs = VarStore::new(device);
    let model_spec = model_spec(params)?;
    let model = model_spec.build(&vs);
    if let Some(name) = &params.pretrained {
        load_pretrained(spec, name, &vs, events)?;
    }
    let groups = layer_decay_groups(
        &vs,
        params.weight_decay,
        params.layer_decay,
        model.backbone.depth(),
    );
    let mut opt = AdamW::new(
        groups,
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    );

    fs_err::create_dir_all(&spec.work_dir)?;
    let digest = run_digest(spec);
    let mut state = match resume::load(&spec.work_dir, &digest, &vs, &mut opt)? {
        Some(state) => {
            events.log("info", format!("resuming from step {}", state.step));
            state
        }
        None => ResumeState {
            step: 0,
            run_digest: digest,
            losses: Vec::new(),
        },
    };
    let crop = CropSettings {
        size: model_spec.model.image_size as u32,
        flips: params.flips,
        rotate: params.rotate90,
    };
    let started = Instant::now();
    let first_step = state.step;
    while state.step < total {
        let step = state.step;
        seed_torch_for_step(spec.seed, step);
        let mut rng = SplitMix64::new(spec.seed, stream::TORCH_STEP, step);
        let mut images = Vec::new();
        let mut targets = Vec::new();
        for i in batch_indices(spec.seed, samples.len(), params.batch_size, step) {
            let (image, target) = training_crop(&samples[i], &crop, &mut rng)?;
            images.push(image);
            targets.push(target);
        }
        let images = Tensor::stack(&images, 0).to_device(device);
        opt.zero_grad();
        let loss = model.losses(&images, &targets).total();
        let value = scalar(&loss);
        anyhow::ensure!(
            value.is_finite(),
            "loss is {value} at step {}: training diverged",
            step + 1
        );
        loss.backward();
        opt.step(step_lr(params.lr, params.warmup_steps, &drops, step));
        state.step += 1;
        state.losses.push(value);
        if state.step.is_multiple_of(params.log_every) || state.step == total {
            let rate = (state.step - first_step) as f64 * params.batch_size as f64
                / started.elapsed().as_secs_f64().max(1e-9);
            events.emit(&Event::Progress {
                step: state.step,
                total,
                loss: Some(value),
                items_per_s: Some(rate),
            });
        }
        let periodic =
            params.checkpoint_every > 0 && state.step.is_multiple_of(params.checkpoint_every);
        let stopping = (stop_after.is_some_and(|n| state.step - first_step >= n)
            || stop_requested())
            && state.step < total;
        if periodic || stopping {
            resume::save(&spec.work_dir, &vs, &opt, &state)?;
        }
        if stopping {
            return Ok(Outcome::Stopped(state.step));
        }
    }

    fs_err::create_dir_all(out_dir)?;
    checkpoint::save(&vs, &out_dir.join(CHECKPOINT_FILE))?;
    fs_err::write(
        out_dir.join(DETECTOR_FILE),
        serde_json::to_vec_pretty(&model_spec)?,
    )?;
    let mut metrics = loss_summary(&state.losses);
    // The detector stage reports the smoothed first and last losses only.
    metrics.remove("loss_final");
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("steps".to_string(), total as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(total));
    }
    Ok(Outcome::Finished(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_x_schedule_warms_up_then_drops_twice() {
        let drops = [8, 11];
        assert!((step_lr(3.0, 3, &drops, 0) - 1.0).abs() < 1e-12);
        assert!((step_lr(3.0, 3, &drops, 3) - 3.0).abs() < 1e-12);
        assert!((step_lr(3.0, 3, &drops, 8) - 0.3).abs() < 1e-12);
        assert!((step_lr(3.0, 3, &drops, 11) - 0.03).abs() < 1e-12);
    }
}
