//! The `finetune-det` stage: ViTDet backbone + Oriented R-CNN on DOTA-format or DIOR-R
//! images, AdamW with layer-wise lr decay, linear warmup and step decay (the 1x schedule:
//! 12 epochs, ×0.1 after epochs 8 and 11), random crops with flips and quarter turns,
//! optionally from an MAE checkpoint; resumable from the work dir.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::det_data::{crop_batch, list_samples, training_crops, CropSettings};
use super::events::Events;
use super::rng::subset_of;
use super::schedule::{Schedule, StepDecaySchedule};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_batches::{loader_config, loader_threads, shard_plans, StepBatches};
use super::step_loop::{run_steps, LoopEnd, LoopSettings, Step, StepLoss};
use crate::arch::VitConfig;
use crate::autocast::Autocast;
use crate::data::loader::Loader;
use crate::nn::oriented_rcnn::{OrientedRcnn, OrientedRcnnConfig};
use crate::nn::vitdet::VitDetConfig;
use crate::params::precision::Precision;
use crate::params::FinetuneDetParams;
use crate::protocol::StageSpec;

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

/// Runs (or resumes) the stage; `stop_after` ends the call after that many steps with a
/// resume checkpoint. Writes the weights and [`DETECTOR_FILE`] into `out_dir`.
pub fn run(
    spec: &StageSpec,
    params: &FinetuneDetParams,
    out_dir: &Path,
    events: &mut Events,
    stop_after: Option<u64>,
) -> anyhow::Result<Outcome> {
    let data = params.det_data()?;
    let root = dataset_root(spec, &data.name)?;
    let all = list_samples(root, &data, data.training_part())?;
    let samples: Arc<[_]> = subset_of(spec.seed, &all, params.fraction).into();
    let steps_per_epoch = samples.len().div_ceil(params.batch_size) as u64;
    let total = params.steps.unwrap_or(params.epochs * steps_per_epoch);
    let drops = params
        .lr_steps
        .clone()
        .unwrap_or_else(|| vec![total * 8 / 12, total * 11 / 12]);
    let epochs = epochs_seen(total, params.batch_size, samples.len());
    events.log(
        "info",
        format!(
            "fine-tuning a detector on {} of {} training images for {total} steps ({epochs:.2} epochs)",
            samples.len(),
            all.len()
        ),
    );

    let setup = TrainingSetup::new(spec)?;
    let model_spec = model_spec(params)?;
    let mut model = model_spec.build(&setup.vs);
    let mut opt = setup.start_fine_tuning(spec, &mut model.backbone, params.into(), events)?;
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
        grad_clip: params.grad_clip,
        accum_steps: params.accum_steps,
    };
    let crop = CropSettings {
        size: model_spec.model.image_size as u32,
        flips: params.flips,
        rotate: params.rotate90,
    };
    let precision = Precision::resolve(params.precision, &spec.device);
    let threads = loader_threads(params.loader_threads, setup.replicas.world_size());
    events.log("info", format!("{threads} loader threads"));
    let train_samples = Arc::clone(&samples);
    let mut batches = StepBatches::new(move |step: &Step| {
        Loader::start(
            training_crops(Arc::clone(&train_samples), crop),
            shard_plans(step.shard, train_samples.len(), step.index, total),
            loader_config(threads),
        )
    });
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let (images, targets) = crop_batch(batches.micro_batch(step)?, crop.size);
        let images = images.to_device(setup.device);
        // Autocast covers the backbone and neck; the heads, box coding and losses stay fp32.
        let features = {
            let _autocast = Autocast::for_precision(precision, setup.device)?;
            model.features(&images, true)
        };
        let features: Vec<Tensor> = features.iter().map(|f| f.to_kind(Kind::Float)).collect();
        let losses = model.losses_from_features(&features, &targets);
        Ok(StepLoss {
            total: losses.total(),
            parts: losses
                .named()
                .into_iter()
                .map(|(name, part)| (name, part.detach()))
                .chain([("roi.positives", Tensor::from(losses.positive_rois))])
                .collect(),
        })
    })?;
    let trained = match end {
        LoopEnd::Finished(trained) => trained,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    setup.save_trained_model(out_dir, DETECTOR_FILE, &model_spec)?;
    let mut metrics = trained.summary();
    // The detector stage reports the smoothed first and last losses only.
    metrics.remove("loss_final");
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("steps".to_string(), total as f64);
    metrics.insert("epochs".to_string(), epochs);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(total));
    }
    Ok(Outcome::Finished(metrics))
}

/// Passes over `images` training images that `steps` steps of `batch_size` make.
fn epochs_seen(steps: u64, batch_size: usize, images: usize) -> f64 {
    steps as f64 * batch_size as f64 / images.max(1) as f64
}
