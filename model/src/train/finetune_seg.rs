//! The `finetune-seg` stage: ViTDet backbone + UperNet on LoveDA or Potsdam crops, AdamW with
//! layer-wise lr decay and a warmup + cosine schedule, optionally from an MAE checkpoint, on a
//! deterministic fraction of the training images; resumable from the work dir.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::events::Events;
use super::rng::subset_of;
use super::schedule::{CosineSchedule, PolySchedule, Schedule};
use super::seg_data::{crop_batch, list_samples, training_crops, IGNORE_INDEX};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_batches::{loader_config, loader_threads, shard_plans, StepBatches};
use super::step_loop::{run_steps, LoopEnd, LoopSettings, Step, StepLoss};
use crate::arch::VitConfig;
use crate::autocast::Autocast;
use crate::data::loader::Loader;
use crate::dist::ProcessGroup;
use crate::nn::norm::NormSpec;
use crate::nn::segmenter::{SegHeads, Segmenter};
use crate::nn::upernet::HeadSettings;
use crate::nn::vitdet::VitDetConfig;
use crate::params::lr_decay::LrDecay;
use crate::params::norm::Norm;
use crate::params::precision::Precision;
use crate::params::FinetuneSegParams;
use crate::protocol::StageSpec;

/// File with the model description an `evaluate` stage rebuilds the segmenter from.
pub const MODEL_FILE: &str = "model.json";

/// The segmenter's architecture, saved beside its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegModelSpec {
    /// Backbone; `image_size` is the crop size.
    pub model: VitConfig,
    /// Window attention and global stages.
    pub vitdet: VitDetConfig,
    /// UperNet width.
    pub head_channels: usize,
    /// Classes predicted.
    pub num_classes: usize,
    /// Normalisation of the heads' conv modules.
    #[serde(default)]
    pub norm: Norm,
    /// Channel dropout before the classifiers in training.
    #[serde(default)]
    pub dropout: f64,
    /// Width of the auxiliary FCN head (None: none).
    #[serde(default)]
    pub aux_channels: Option<usize>,
}

impl SegModelSpec {
    /// Builds the segmenter under the root of `vs`; `group` is the data-parallel group that
    /// synchronised batch norm pools over in training (None for one process or inference).
    pub fn build(&self, vs: &VarStore, group: Option<ProcessGroup>) -> Segmenter {
        let heads = SegHeads {
            channels: self.head_channels as i64,
            aux_channels: self.aux_channels.map(|c| c as i64),
            settings: HeadSettings {
                norm: NormSpec {
                    kind: self.norm,
                    group,
                },
                dropout: self.dropout,
            },
        };
        Segmenter::new(
            &vs.root(),
            &self.model,
            &self.vitdet,
            &heads,
            self.num_classes as i64,
        )
    }
}

/// The segmenter a `finetune-seg` stage trains.
pub fn model_spec(params: &FinetuneSegParams) -> anyhow::Result<SegModelSpec> {
    Ok(SegModelSpec {
        model: params.backbone.vit()?,
        vitdet: params.vitdet.clone(),
        head_channels: params.head_channels,
        num_classes: params.seg_data()?.format.num_classes(),
        norm: params.norm,
        dropout: params.dropout,
        aux_channels: params.aux_head_channels(),
    })
}

/// The stage's learning rate per step: linear warmup, then poly or cosine decay.
fn schedule(params: &FinetuneSegParams) -> Schedule {
    match params.schedule {
        LrDecay::Poly => Schedule::Poly(PolySchedule {
            peak_lr: params.lr,
            min_lr: params.min_lr,
            power: params.poly_power,
            warmup_steps: params.warmup_steps,
            total_steps: params.steps,
        }),
        LrDecay::Cosine => Schedule::Cosine(CosineSchedule {
            peak_lr: params.lr,
            min_lr: params.min_lr,
            warmup_steps: params.warmup_steps,
            total_steps: params.steps,
        }),
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
    let data = params.seg_data()?;
    let root = dataset_root(spec, &data.name)?;
    let all = list_samples(root, &data, data.training_part())?;
    let samples: Arc<[_]> = subset_of(spec.seed, &all, params.fraction).into();
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
    params.check_layout(setup.replicas.world_size())?;
    let model_spec = model_spec(params)?;
    let mut model = model_spec.build(&setup.vs, setup.replicas.group());
    let mut opt = setup.start_fine_tuning(spec, &mut model.backbone, params.into(), events)?;
    let settings = LoopSettings {
        schedule: schedule(params),
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
        grad_clip: params.grad_clip,
        accum_steps: params.accum_steps,
    };
    let augment = params.augment(model_spec.model.image_size as u32, IGNORE_INDEX);
    let precision = Precision::resolve(params.precision, &spec.device);
    let threads = loader_threads(params.loader_threads, setup.replicas.world_size());
    events.log("info", format!("{threads} loader threads"));
    let train_samples = Arc::clone(&samples);
    let total = params.steps;
    let mut batches = StepBatches::new(move |step: &Step| {
        Loader::start(
            training_crops(Arc::clone(&train_samples), augment),
            shard_plans(step.shard, train_samples.len(), step.index, total),
            loader_config(threads),
        )
    });
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let (images, labels) = crop_batch(batches.micro_batch(step)?, augment.crop);
        let images = images.to_device(setup.device);
        let labels = labels.to_device(setup.device);
        // Autocast covers the forward pass only; the losses are taken in fp32.
        let (logits, aux) = {
            let _autocast = Autocast::for_precision(precision, setup.device)?;
            model.forward_train(&images)?
        };
        let loss_of = |logits: &Tensor| {
            model.loss(
                &logits.to_kind(Kind::Float),
                &labels,
                i64::from(IGNORE_INDEX),
            )
        };
        // `loss` = `loss.main` + aux_loss_weight × `loss.aux`.
        let main = loss_of(&logits);
        Ok(match aux {
            Some(aux) => {
                let aux = loss_of(&aux);
                StepLoss {
                    total: &main + &aux * params.aux_loss_weight,
                    parts: vec![("loss.main", main.detach()), ("loss.aux", aux.detach())],
                }
            }
            None => StepLoss {
                parts: vec![("loss.main", main.detach())],
                total: main,
            },
        })
    })?;
    let trained = match end {
        LoopEnd::Finished(trained) => trained,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    setup.save_trained_model(out_dir, MODEL_FILE, &model_spec)?;
    let mut metrics = trained.summary();
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("params".to_string(), model_spec.model.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
