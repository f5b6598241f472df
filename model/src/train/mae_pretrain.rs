//! The `mae-pretrain` stage: MAE on a folder of images (or generated scenes), AdamW with a
//! warmup + cosine schedule, resumable from the work dir. Images are decoded and augmented
//! (MAE's random resized crop and flip) by the threaded [`Loader`] ahead of the step loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::events::Events;
use super::schedule::{scaled_lr, CosineSchedule, Schedule};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_batches::{loader_config, loader_threads, StepBatches};
use super::step_loop::{run_steps, LoopEnd, LoopSettings, Step};
use crate::autocast::Autocast;
use crate::data::error::DataError;
use crate::data::formats::millionaid;
use crate::data::loader::{images_tensor, mae_images, Loader, MaeAugment};
use crate::dist::DistributedSampler;
use crate::nn::mae::MaskedAutoencoder;
use crate::params::data::resolved_dataset;
use crate::params::precision::Precision;
use crate::params::MaePretrainParams;
use crate::protocol::StageSpec;
use tch::{Kind, Tensor};

/// File name of the pretrained weights in the stage's output dir.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

fn image_paths(spec: &StageSpec, params: &MaePretrainParams) -> anyhow::Result<Arc<[PathBuf]>> {
    let root = dataset_root(spec, &resolved_dataset(&params.dataset)?)?;
    let paths: Vec<PathBuf> = millionaid::list_images(root)?
        .into_iter()
        .map(|s| s.path)
        .collect();
    anyhow::ensure!(
        !paths.is_empty(),
        "{} holds no images to pretrain on",
        root.display()
    );
    Ok(paths.into())
}

/// This rank's augmented images from the step the loop starts at to the end (MAE's
/// distributed sampler order, each sample drawn in its epoch).
fn rank_batches(
    paths: Arc<[PathBuf]>,
    augment: MaeAugment,
    seed: u64,
    threads: usize,
    total_steps: u64,
) -> StepBatches<Vec<f32>, DataError> {
    StepBatches::new(move |step: &Step| {
        let sampler = DistributedSampler {
            seed: step.shard.seed,
            len: paths.len(),
            rank: step.shard.rank,
            world_size: step.shard.world_size,
        };
        let per_rank = step.shard.per_rank;
        let plans = (step.index..total_steps).map(move |s| sampler.plan(s, per_rank));
        Loader::start(
            mae_images(Arc::clone(&paths), augment, seed),
            plans,
            loader_config(threads),
        )
    })
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
    let paths = image_paths(spec, params)?;
    let vit = params.backbone.vit()?;
    let setup = TrainingSetup::new(spec)?;
    let mut model = MaskedAutoencoder::new(&setup.vs.root(), &vit, &params.mae);
    if params.activation_checkpointing {
        model.checkpoint_activations(&setup.tape);
    }
    let mut opt = setup.pretraining_optimizer(params.weight_decay, params.optimizer_sharding);
    let peak_lr = scaled_lr(params.base_lr, params.batch_size);
    let schedule = Schedule::Cosine(CosineSchedule {
        peak_lr,
        min_lr: params.min_lr,
        warmup_steps: params.warmup_steps,
        total_steps: params.steps,
    });

    let threads = loader_threads(params.loader_threads, setup.replicas.world_size());
    events.log(
        "info",
        format!(
            "MAE on {} images ({threads} loader threads), {} params, peak lr {peak_lr:.3e}, device {}",
            paths.len(),
            vit.param_count(),
            spec.device
        ),
    );
    let settings = LoopSettings {
        schedule,
        batch_size: params.batch_size,
        checkpoint_every: params.checkpoint_every,
        log_every: params.log_every,
        stop_after,
        grad_clip: params.grad_clip,
        accum_steps: params.accum_steps,
    };
    let patches = vit.num_patches() as i64;
    let precision = Precision::resolve(params.precision, &spec.device);
    let side = vit.image_size as u32;
    let mut batches = rank_batches(
        paths,
        MaeAugment::new(side),
        spec.seed,
        threads,
        params.steps,
    );
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let images: Vec<&[f32]> = batches
            .micro_batch(step)?
            .iter()
            .map(Vec::as_slice)
            .collect();
        let batch = images_tensor(&images, side).to_device(setup.device);
        // The masking noise is drawn for the global batch and this rank keeps its rows, so
        // N ranks mask each image as one process with the whole batch does.
        let noise = Tensor::rand(
            [params.batch_size as i64, patches],
            (Kind::Float, setup.device),
        );
        let noise = step.local_rows(&noise);
        // Autocast covers the forward pass only; the guard ends before backward.
        let _autocast = Autocast::for_precision(precision, setup.device)?;
        Ok(model.forward_with_noise(&batch, &noise, true).loss)
    })?;
    let trained = match end {
        LoopEnd::Finished(trained) => trained,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    setup.save_checkpoint(out_dir)?;
    let mut metrics = trained.summary();
    metrics.insert("steps".into(), trained.losses.len() as f64);
    metrics.insert("params".into(), vit.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
