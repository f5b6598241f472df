//! The `evaluate` stage for segmentation: sliding-window inference of a fine-tuned segmenter
//! over the held-out images, scored with the confusion-matrix metrics (mIoU, OA, mF1). Each
//! image's predicted classes are kept as `predictions/<id>.png`, so `rescore-potsdam` can score
//! them again under other labels without running the model. With `split = "test"` it predicts
//! LoveDA's hidden-label test images instead, for the LoveDA server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use tch::nn::VarStore;
use tch::Kind;

use super::events::Events;
use super::finetune_seg::{SegModelSpec, MODEL_FILE};
use super::images::{standardize, to_tensor};
use super::mae_pretrain::CHECKPOINT_FILE;
use super::seg_data::{list_samples, Part, IGNORE_INDEX};
use super::stage::{parse_device, stop_requested};
use super::stage_inputs::{dataset_root, input_dir};
use crate::data::image_io::{read_image, write_png, Image};
use crate::data::seg_samples::PREDICTIONS_DIR;
use crate::data::test_images::{loveda_test_images, write_predicted};
use crate::metrics::segmentation::ConfusionMatrix;
use crate::nn::checkpoint;
use crate::params::EvaluateParams;
use crate::protocol::{Event, StageSpec};

/// Scores the model on the held-out images; returns `miou`, `oa`, `mf1` and `iou.<class>`, and
/// writes each image's prediction into `out/predictions/`.
pub fn run(
    spec: &StageSpec,
    params: &EvaluateParams,
    out: &Path,
    events: &mut Events,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let device = parse_device(&spec.device)?;
    let data = params.seg_data()?;
    let model_from = params.model_from.as_deref().unwrap_or_default();
    let dir = input_dir(spec, "params.model_from", model_from)?;
    let model_file = dir.join(MODEL_FILE);
    let model_spec: SegModelSpec = serde_json::from_slice(&fs_err::read(&model_file)?)
        .with_context(|| format!("{}: invalid model description", model_file.display()))?;
    let num_classes = data.format.num_classes();
    anyhow::ensure!(
        model_spec.num_classes == num_classes,
        "{} predicts {} classes, the dataset has {num_classes}",
        model_file.display(),
        model_spec.num_classes
    );
    let vs = VarStore::new(device);
    let model = model_spec.build(&vs, None);
    let report = checkpoint::load(&vs, &dir.join(CHECKPOINT_FILE))?;
    anyhow::ensure!(
        report.missing.is_empty(),
        "{}: {}",
        dir.join(CHECKPOINT_FILE).display(),
        report.summary()
    );

    let root = dataset_root(spec, &data.name)?;
    let crop = model_spec.model.image_size as i64;
    let stride = params
        .stride
        .map(|s| s as i64)
        .unwrap_or((crop * 2 / 3).max(1));
    fs_err::create_dir_all(out.join(PREDICTIONS_DIR))?;
    // Predicts `image`, keeps the prediction as `predictions/<id>.png` and returns its classes.
    let predict = |id: &str, image: &Image| -> anyhow::Result<Vec<u8>> {
        let input = standardize(&to_tensor(image));
        let logits = tch::no_grad(|| {
            model.slide_inference_flip(
                &input.unsqueeze(0).to_device(device),
                crop,
                stride,
                params.flip,
            )
        })?;
        let pred = logits.argmax(1, false).to_kind(Kind::Uint8).flatten(0, -1);
        let prediction = Image {
            width: image.width,
            height: image.height,
            channels: 1,
            data: Vec::<u8>::try_from(&pred).context("prediction to bytes")?,
        };
        write_png(
            &out.join(PREDICTIONS_DIR).join(format!("{id}.png")),
            &prediction,
        )?;
        Ok(prediction.data)
    };
    let progress = |events: &mut Events, done: usize, total: usize| -> anyhow::Result<()> {
        anyhow::ensure!(
            !stop_requested(),
            "stopped by a signal after {done} of {total} images"
        );
        if done > 0 {
            events.emit(&Event::Progress {
                step: done as u64,
                total: total as u64,
                loss: None,
                items_per_s: None,
                lr: None,
            });
        }
        Ok(())
    };
    let metrics = if params.predicts_test() {
        let images = loveda_test_images(root)?;
        for (i, test) in images.iter().enumerate() {
            progress(events, i, images.len())?;
            predict(&test.id, &read_image(&test.image)?)?;
        }
        progress(events, images.len(), images.len())?;
        write_predicted(out, &images)?;
        BTreeMap::from([("images".to_string(), images.len() as f64)])
    } else {
        let samples = list_samples(root, &data, Part::Val)?;
        let scored = data.scored_classes();
        let mut confusion =
            ConfusionMatrix::new(scored.len()).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, sample) in samples.iter().enumerate() {
            progress(events, i, samples.len())?;
            let (image, labels) = sample.load()?;
            let pred = predict(&sample.id, &image)?;
            confusion
                .accumulate(&pred, &labels, Some(IGNORE_INDEX))
                .map_err(|e| anyhow::anyhow!("{}: {e}", sample.id))?;
        }
        progress(events, samples.len(), samples.len())?;
        confusion.report(&[]).stage_metrics(&scored, samples.len())
    };
    for (name, value) in &metrics {
        events.metric(name, *value, None);
    }
    Ok(metrics)
}
