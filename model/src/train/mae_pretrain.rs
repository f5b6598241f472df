//! The `mae-pretrain` stage: MAE on a folder of images (or generated scenes), AdamW with a
//! warmup + cosine schedule, resumable from the work dir.

use std::path::Path;

use super::events::Events;
use super::images::ImageFolder;
use super::schedule::{scaled_lr, CosineSchedule, Schedule};
use super::setup::TrainingSetup;
use super::stage::Outcome;
use super::stage_inputs::dataset_root;
use super::step_loop::{loss_summary, run_steps, LoopEnd, LoopSettings};
use crate::autocast::Autocast;
use crate::data::formats::millionaid;
use crate::nn::checkpoint;
use crate::nn::mae::MaskedAutoencoder;
use crate::params::data::resolved_dataset;
use crate::params::precision::Precision;
use crate::params::MaePretrainParams;
use crate::protocol::StageSpec;
use tch::{Kind, Tensor};

/// File name of the pretrained weights in the stage's output dir.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

fn image_folder(spec: &StageSpec, params: &MaePretrainParams) -> anyhow::Result<ImageFolder> {
    let root = dataset_root(spec, &resolved_dataset(&params.dataset)?)?;
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
    let images = image_folder(spec, params)?;
    let vit = params.backbone.vit()?;
    let setup = TrainingSetup::new(spec)?;
    let mut model = MaskedAutoencoder::new(&setup.vs.root(), &vit, &params.mae);
    if params.activation_checkpointing {
        model.checkpoint_activations(&setup.tape);
    }
    let mut opt = setup.pretraining_optimizer(params.weight_decay);
    let peak_lr = scaled_lr(params.base_lr, params.batch_size);
    let schedule = Schedule::Cosine(CosineSchedule {
        peak_lr,
        min_lr: params.min_lr,
        warmup_steps: params.warmup_steps,
        total_steps: params.steps,
    });

    events.log(
        "info",
        format!(
            "MAE on {} images, {} params, peak lr {peak_lr:.3e}, device {}",
            images.paths.len(),
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
    };
    let size = vit.image_size as i64;
    let patches = vit.num_patches() as i64;
    let precision = Precision::resolve(params.precision, &spec.device);
    let end = run_steps(spec, &setup, &mut opt, &settings, events, |step| {
        let indices: Vec<usize> = step
            .samples(images.paths.len())
            .into_iter()
            .map(|sample| sample.index)
            .collect();
        let batch = images.batch(&indices, size)?.to_device(setup.device);
        // The masking noise is drawn for the global batch and this rank keeps its rows, so
        // N ranks mask each image as one process with the whole batch does.
        let noise = Tensor::rand(
            [params.batch_size as i64, patches],
            (Kind::Float, setup.device),
        );
        let noise = step.shard.local_rows(&noise);
        // Autocast covers the forward pass only; the guard ends before backward.
        let _autocast = Autocast::for_precision(precision, setup.device)?;
        Ok(model.forward_with_noise(&batch, &noise, true).loss)
    })?;
    let losses = match end {
        LoopEnd::Finished(losses) => losses,
        LoopEnd::Stopped(step) => return Ok(Outcome::Stopped(step)),
    };

    if setup.replicas.is_leader() {
        fs_err::create_dir_all(out_dir)?;
        checkpoint::save(&setup.vs, &out_dir.join(CHECKPOINT_FILE))?;
    }
    let mut metrics = loss_summary(&losses);
    metrics.insert("steps".into(), losses.len() as f64);
    metrics.insert("params".into(), vit.param_count() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, Some(params.steps));
    }
    Ok(Outcome::Finished(metrics))
}
