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
use super::step_loop::{run_steps, LoopEnd, LoopSettings, Step};
use crate::autocast::Autocast;
use crate::data::formats::millionaid;
use crate::data::loader::{Loader, LoaderConfig, MaeAugment};
use crate::dist::DistributedSampler;
use crate::nn::mae::MaskedAutoencoder;
use crate::params::data::resolved_dataset;
use crate::params::precision::Precision;
use crate::params::MaePretrainParams;
use crate::protocol::StageSpec;
use anyhow::Context;
use tch::{Kind, Tensor};

/// File name of the pretrained weights in the stage's output dir.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Batches decoded ahead of the step loop.
const PREFETCH_BATCHES: usize = 2;
/// Most loader threads a rank takes when the recipe sets none.
const MAX_DEFAULT_LOADER_THREADS: usize = 8;

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

/// `loader_threads`, or the machine's cores shared among the `ranks` on it (1 to 8).
fn loader_threads(requested: Option<usize>, ranks: usize) -> usize {
    requested.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / ranks.max(1)).clamp(1, MAX_DEFAULT_LOADER_THREADS)
    })
}

/// This rank's batches from the first step the loop asks for (0, or the step it resumes
/// from) to the end: started on that first request, so the loader's position comes from the
/// resume checkpoint's step.
struct RankBatches {
    paths: Arc<[PathBuf]>,
    augment: MaeAugment,
    config: LoaderConfig,
    total_steps: u64,
    loader: Option<Loader>,
    /// The last step's batch, which its later micro-batches take their rows of.
    current: Option<(u64, Tensor)>,
}

impl RankBatches {
    /// This micro-batch's images of `step`: rows of the rank's `[per_rank, 3, size, size]`
    /// batch, loaded once per step.
    fn micro_batch(&mut self, step: &Step) -> anyhow::Result<Tensor> {
        if !matches!(&self.current, Some((index, _)) if *index == step.index) {
            let batch = self.next(step)?;
            self.current = Some((step.index, batch));
        }
        let (_, batch) = self.current.as_ref().context("a batch was just loaded")?;
        Ok(step.micro_rows(batch))
    }

    /// This rank's `[per_rank, 3, size, size]` images of `step`.
    fn next(&mut self, step: &Step) -> anyhow::Result<Tensor> {
        let loader = self.loader.get_or_insert_with(|| {
            let sampler = DistributedSampler {
                seed: step.shard.seed,
                len: self.paths.len(),
                rank: step.shard.rank,
                world_size: step.shard.world_size,
            };
            let per_rank = step.shard.per_rank;
            let plans = (step.index..self.total_steps).map(move |s| sampler.plan(s, per_rank));
            Loader::start(Arc::clone(&self.paths), self.augment, plans, self.config)
        });
        let batch = loader
            .next_batch()
            .with_context(|| format!("the image loader ended before step {}", step.index + 1))?
            .context("cannot load a training image")?;
        anyhow::ensure!(
            batch.step == step.index,
            "the image loader gave step {} for step {}",
            batch.step,
            step.index
        );
        Ok(batch.to_tensor())
    }
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
    let mut batches = RankBatches {
        paths,
        augment: MaeAugment::new(vit.image_size as u32),
        config: LoaderConfig {
            threads,
            prefetch: PREFETCH_BATCHES,
            seed: spec.seed,
        },
        total_steps: params.steps,
        loader: None,
        current: None,
    };
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let batch = batches.micro_batch(step)?.to_device(setup.device);
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
