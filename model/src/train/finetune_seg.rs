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
use super::optim::{AdamW, AdamWConfig};
use super::params::layer_decay_groups;
use super::rng::{batch_indices, stream, subset_of, SplitMix64};
use super::schedule::CosineSchedule;
use super::seg_data::{list_samples, random_crop, Part, IGNORE_INDEX};
use super::stage::{parse_device, seed_init, Outcome};
use super::stage_inputs::{dataset_root, input_dir};
use super::step_loop::{loss_summary, run_steps, LoopEnd, LoopSettings};
use crate::arch::VitConfig;
use crate::nn::checkpoint;
use crate::nn::segmenter::Segmenter;
use crate::nn::vitdet::VitDetConfig;
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

/// The segmenter a `finetune-seg` stage trains.
pub fn model_spec(params: &FinetuneSegParams) -> anyhow::Result<SegModelSpec> {
    Ok(SegModelSpec {
        model: params.backbone.vit()?,
        vitdet: params.vitdet.clone(),
        head_channels: params.head_channels,
        num_classes: params.seg_data()?.format.num_classes(),
    })
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
    let backbone_missing: Vec<&String> = report
        .missing
        .iter()
        .filter(|k| k.starts_with("backbone.") && !k.starts_with("backbone.neck."))
        .collect();
    anyhow::ensure!(
        backbone_missing.is_empty(),
        "{}: backbone weights missing: {:?}",
        file.display(),
        backbone_missing
    );
    events.log(
        "info",
        format!("loaded {}: {}", file.display(), report.summary()),
    );
    Ok(())
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
    let device = parse_device(&spec.device)?;
    let data = params.seg_data()?;
    let root = dataset_root(spec, &data.name)?;
    let all = list_samples(root, &data, Part::Train)?;
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
    let schedule = CosineSchedule {
        peak_lr: params.lr,
        min_lr: params.min_lr,
        warmup_steps: params.warmup_steps,
        total_steps: params.steps,
    };

    let settings = LoopSettings {
        schedule,
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
    };
    let crop = model_spec.model.image_size as u32;
    let end = run_steps(spec, &vs, &mut opt, &settings, events, |step| {
        let mut rng = SplitMix64::new(spec.seed, stream::AUGMENT, step);
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in batch_indices(spec.seed, samples.len(), params.batch_size, step) {
            let (image, label) = samples[i].load()?;
            let (img, lab) = random_crop(&image, &label, crop, &mut rng);
            images.push(img);
            labels.push(lab);
        }
        let images = Tensor::stack(&images, 0).to_device(device);
        let labels = Tensor::stack(&labels, 0).to_device(device);
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
    checkpoint::save(&vs, &out_dir.join(CHECKPOINT_FILE))?;
    fs_err::write(
        out_dir.join(MODEL_FILE),
        serde_json::to_vec_pretty(&model_spec)?,
    )?;
    let mut metrics = loss_summary(&losses);
    metrics.insert("train_images".to_string(), samples.len() as f64);
    metrics.insert("params".to_string(), model_spec.model.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
