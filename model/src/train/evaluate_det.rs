//! The detection `evaluate` stage: a fine-tuned Oriented R-CNN predicts every held-out image
//! patch by patch (DOTA split, default 1024 with gap 200), patch detections are merged with
//! rotated NMS, written as DOTA Task1 files and scored with the dataset's AP protocol.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::det_data::{ground_truths, list_samples, DetDataParams, Part};
use super::events::Events;
use super::finetune_det::{DetModelSpec, DETECTOR_FILE};
use super::mae_pretrain::CHECKPOINT_FILE;
use super::stage::parse_device;
use super::stage_inputs::{dataset_root, input_dir};
use crate::data::formats::dota::write_task1_dir;
use crate::data::image_io::read_image;
use crate::metrics::detection::{evaluate, ApMetric, Detection, EvalOptions, Protocol};
use crate::nn::checkpoint;
use crate::nn::oriented_rcnn::inference::{predict_large_image, TiledPrediction};
use crate::protocol::{Event, StageSpec};

/// Folder of the Task1 result files inside the stage's output dir.
pub const TASK1_DIR: &str = "task1";

fn default_iou() -> f64 {
    0.5
}
fn default_merge_iou() -> f64 {
    0.1
}
fn default_ap_metric() -> String {
    "voc07".to_string()
}

/// Parameters of a detection `evaluate` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateDetParams {
    /// `det` (or `detection`).
    pub task: String,
    /// Name of the needed `finetune-det` stage.
    pub model_from: String,
    /// The dataset (its held-out part is scored).
    pub data: DetDataParams,
    /// AP protocol (default: the dataset's, see [`DetDataParams::default_protocol`]).
    #[serde(default)]
    pub protocol: Option<String>,
    /// `voc07` or `voc12`.
    #[serde(default = "default_ap_metric")]
    pub ap_metric: String,
    /// IoU threshold of a true positive.
    #[serde(default = "default_iou")]
    pub iou: f64,
    /// Gap between prediction patches (default: a fifth of the model's input side).
    #[serde(default)]
    pub overlap: Option<u32>,
    /// Rotated NMS IoU of the merge.
    #[serde(default = "default_merge_iou")]
    pub merge_iou: f64,
}

impl EvaluateDetParams {
    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.task.as_str(), "det" | "detection"),
            "params.task must be `det`, got `{}`",
            self.task
        );
        self.eval_options()?;
        anyhow::ensure!(
            self.iou > 0.0 && self.iou <= 1.0,
            "params.iou must be in (0, 1]"
        );
        self.data.class_names()?;
        Ok(())
    }

    fn eval_options(&self) -> anyhow::Result<EvalOptions> {
        let protocol: Protocol = self
            .protocol
            .as_deref()
            .unwrap_or(self.data.default_protocol())
            .parse()
            .map_err(|e: String| anyhow::anyhow!("params.protocol: {e}"))?;
        let metric: ApMetric = self
            .ap_metric
            .parse()
            .map_err(|e: String| anyhow::anyhow!("params.ap_metric: {e}"))?;
        Ok(EvalOptions {
            protocol,
            metric,
            iou_thresholds: vec![self.iou],
        })
    }
}

/// Predicts, writes Task1 files into `out_dir/task1` and returns `map` and `ap.<class>`
/// (NaN where the protocol leaves an AP undefined).
pub fn run(
    spec: &StageSpec,
    params: &EvaluateDetParams,
    out_dir: &Path,
    events: &mut Events,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let device = parse_device(&spec.device)?;
    let dir = input_dir(spec, "params.model_from", &params.model_from)?;
    let model_file = dir.join(DETECTOR_FILE);
    let model_spec: DetModelSpec = serde_json::from_slice(&fs_err::read(&model_file)?)
        .with_context(|| format!("{}: invalid detector description", model_file.display()))?;
    let classes = params.data.class_names()?;
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

    let root = dataset_root(spec, &params.data.name)?;
    let samples = list_samples(root, &params.data, Part::Val)?;
    let patch_size = model_spec.model.image_size as u32;
    let tiling = TiledPrediction {
        patch_size,
        gap: params.overlap.unwrap_or(patch_size / 5),
        merge_iou: params.merge_iou,
        batch: 1,
    };
    let mut task1 = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let image = read_image(&sample.image)?;
        task1.extend(predict_large_image(
            &model, &image, &sample.id, &classes, &tiling, device,
        )?);
        events.emit(&Event::Progress {
            step: i as u64 + 1,
            total: samples.len() as u64,
            loss: None,
            items_per_s: None,
        });
    }
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    write_task1_dir(&out_dir.join(TASK1_DIR), &names, &task1)?;
    let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
    let scores = evaluate(
        &ground_truths(&samples, &classes),
        &dets,
        &classes,
        &params.eval_options()?,
    );
    let mut metrics = BTreeMap::new();
    metrics.insert("map".to_string(), scores.map);
    for (class, ap) in &scores.ap {
        metrics.insert(format!("ap.{class}"), ap.unwrap_or(f64::NAN));
    }
    metrics.insert("images".to_string(), samples.len() as f64);
    metrics.insert("detections".to_string(), dets.len() as f64);
    for (name, value) in &metrics {
        events.metric(name, *value, None);
    }
    Ok(metrics)
}
