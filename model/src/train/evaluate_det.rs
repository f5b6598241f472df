//! The detection `evaluate` stage: a fine-tuned Oriented R-CNN predicts every held-out image
//! patch by patch (DOTA split, default 1024 with gap 200), patch detections are merged with
//! rotated NMS, written as DOTA Task1 files and scored with the dataset's AP protocol. With
//! `split = "test"` it predicts the hidden-label test images instead, for the DOTA server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use tch::nn::VarStore;

use super::det_data::{ground_truths, list_samples, Part};
use super::events::Events;
use super::finetune_det::{DetModelSpec, DETECTOR_FILE};
use super::mae_pretrain::CHECKPOINT_FILE;
use super::stage::parse_device;
use super::stage_inputs::{dataset_root, input_dir};
use crate::data::formats::dota::write_task1_dir;
use crate::data::image_io::read_image;
use crate::data::test_images::{dota_test_images, write_predicted};
use crate::metrics::detection::{evaluate, Detection, EvalOptions};
use crate::nn::checkpoint;
use crate::nn::oriented_rcnn::inference::{predict_large_image, TiledPrediction};
use crate::params::data::DetDataParams;
use crate::params::EvaluateParams;
use crate::protocol::{Event, StageSpec};

pub use crate::data::det_samples::TASK1_DIR;

/// The AP protocol, metric and IoU threshold the stage scores with.
fn eval_options(params: &EvaluateParams, data: &DetDataParams) -> anyhow::Result<EvalOptions> {
    let protocol = params
        .protocol
        .as_deref()
        .unwrap_or(data.default_protocol());
    EvalOptions::named(protocol, &params.ap_metric, params.iou)
        .map_err(|e| anyhow::anyhow!("params.{e}"))
}

/// Predicts, writes Task1 files into `out_dir/task1` and returns `map` and `ap.<class>`
/// (NaN where the protocol leaves an AP undefined).
pub fn run(
    spec: &StageSpec,
    params: &EvaluateParams,
    out_dir: &Path,
    events: &mut Events,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let device = parse_device(&spec.device)?;
    let data = params.det_data()?;
    let options = eval_options(params, &data)?;
    let model_from = params.model_from.as_deref().unwrap_or_default();
    let dir = input_dir(spec, "params.model_from", model_from)?;
    let model_file = dir.join(DETECTOR_FILE);
    let model_spec: DetModelSpec = serde_json::from_slice(&fs_err::read(&model_file)?)
        .with_context(|| format!("{}: invalid detector description", model_file.display()))?;
    let classes = data.class_names()?;
    anyhow::ensure!(
        model_spec.classes == classes,
        "{} was trained on other classes than the dataset's",
        model_file.display()
    );
    let vs = VarStore::new(device);
    let model = model_spec.build(&vs);
    let weights = dir.join(CHECKPOINT_FILE);
    let report = checkpoint::load(&vs, &weights)?;
    anyhow::ensure!(
        report.missing.is_empty(),
        "{}: {}",
        weights.display(),
        report.summary()
    );

    let root = dataset_root(spec, &data.name)?;
    let patch_size = model_spec.model.image_size as u32;
    let tiling = TiledPrediction {
        patch_size,
        gap: params.overlap.unwrap_or(patch_size / 5),
        merge_iou: params.merge_iou,
        batch: 1,
    };
    let predict = |images: &[(&str, &Path)], events: &mut Events| -> anyhow::Result<Vec<_>> {
        let mut task1 = Vec::new();
        for (i, (id, path)) in images.iter().enumerate() {
            let image = read_image(path)?;
            task1.extend(predict_large_image(
                &model, &image, id, &classes, &tiling, device,
            )?);
            events.emit(&Event::Progress {
                step: i as u64 + 1,
                total: images.len() as u64,
                loss: None,
                items_per_s: None,
                lr: None,
            });
        }
        Ok(task1)
    };
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    let metrics = if params.predicts_test() {
        let images = dota_test_images(root, data.dota_version()?)?;
        let listed: Vec<(&str, &Path)> = images
            .iter()
            .map(|i| (i.id.as_str(), i.image.as_path()))
            .collect();
        let task1 = predict(&listed, events)?;
        write_task1_dir(&out_dir.join(TASK1_DIR), &names, &task1)?;
        write_predicted(out_dir, &images)?;
        BTreeMap::from([
            ("images".to_string(), images.len() as f64),
            ("detections".to_string(), task1.len() as f64),
        ])
    } else {
        let samples = list_samples(root, &data, Part::Val)?;
        let listed: Vec<(&str, &Path)> = samples
            .iter()
            .map(|s| (s.id.as_str(), s.image.as_path()))
            .collect();
        let task1 = predict(&listed, events)?;
        write_task1_dir(&out_dir.join(TASK1_DIR), &names, &task1)?;
        let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
        let scores = evaluate(
            &ground_truths(&samples, &classes),
            &dets,
            &classes,
            &options,
        );
        scores.stage_metrics(samples.len(), dets.len())
    };
    for (name, value) in &metrics {
        events.metric(name, *value, None);
    }
    Ok(metrics)
}
