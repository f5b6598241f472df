//! Parameters of an `evaluate` stage (segmentation or detection).

use crate::params::ParamError;
use serde::de::DeserializeOwned;

use super::data::{
    potsdam_labels, resolved_dataset, DetDataParams, EvalTask, SegDataParams, SegFormat,
    AP_METRICS, AP_PROTOCOLS, DATA_FORMATS, DOTA_RELEASES, EVAL_SPLITS,
};
use super::types::RATIO;
use crate::data::formats::potsdam::PotsdamLabels;

crate::schema! {
    /// Parameters of an `evaluate` stage: scores the model of a needed fine-tuning stage on
    /// the held-out part of a dataset.
    pub struct EvaluateParams includes {} {
        /// What is scored, seg or det (unset: from the kind of the `model_from` stage).
        task: Option<EvalTask> = None,
        /// The needed finetune-seg or finetune-det stage whose model is scored (unset: the
        /// only needed one).
        model_from: Option<String> = None,
        /// The data: a name in the stage's `datasets`, or a needed stage whose output is a
        /// dataset (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// Dataset layout (seg: loveda, potsdam; det: dota, dior-r) (unset: the dataset's
        /// `format`).
        format: Option<String> as DATA_FORMATS = None,
        /// `held-out`: score the labelled part this study holds out (DOTA `val/`, LoveDA
        /// `Val/`, DIOR-R `test`, Potsdam's test tiles). `test`: predict the hidden-label test
        /// images of DOTA (`test-dev/` for v2.0) or LoveDA (`Test/`) for the dataset's
        /// evaluation server; nothing is scored here (`rsfm submit` packs the predictions,
        /// `rsfm ingest` reads the server's score back).
        split: String as EVAL_SPLITS = "held-out".to_string(),
        /// seg: Potsdam tiles scored, with their crops (unset: the 14 standard test tiles).
        val_tiles: Option<Vec<String>> = None,
        /// potsdam: which reference labels: `full` (`*_label.tif`, 5_Labels_all) or `eroded`
        /// (`*_label_noBoundary.tif`, 5_Labels_all_noBoundary: boundaries ignored, the labels the
        /// benchmark scores) (unset: full).
        labels: Option<PotsdamLabels> = None,
        /// potsdam: score clutter as a sixth class (ISPRS's all-class protocol) instead of
        /// ignoring it, as the paper's five-class scores do.
        clutter: bool = false,
        /// seg: sliding-window stride in pixels (unset: two thirds of the crop).
        stride: Option<usize> = None,
        /// seg: also predict the horizontally flipped image and average the two (mmseg's
        /// `flip=True` test-time augmentation).
        flip: bool = false,
        /// det: DOTA release whose classes are used.
        version: String as DOTA_RELEASES = "v1.0".to_string(),
        /// det: AP protocol (unset: devkit for DOTA, mmrotate for DIOR-R).
        protocol: Option<String> as AP_PROTOCOLS = None,
        /// det: VOC07 11-point or VOC12 area AP.
        ap_metric: String as AP_METRICS = "voc07".to_string(),
        /// det: IoU threshold of a true positive.
        iou: f64 as RATIO = 0.5,
        /// det: gap between prediction patches in pixels (unset: a fifth of the input side).
        overlap: Option<u32> = None,
        /// det: rotated NMS IoU when merging patch detections.
        merge_iou: f64 as RATIO = 0.1,
    }
}

impl EvaluateParams {
    /// Checks values the types cannot and that no key of the other task is set; errors name
    /// the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::ensure_param!(
            self.model_from.is_some(),
            "model_from",
            "`model_from` is not set: the plan names the stage whose model is scored"
        );
        let defaults = Self::default();
        if self.predicts_test() {
            self.check_test_split(&defaults)?;
        }
        match self.task()? {
            EvalTask::Seg => {
                let det_only = [
                    ("version", self.version != defaults.version),
                    ("protocol", self.protocol.is_some()),
                    ("ap_metric", self.ap_metric != defaults.ap_metric),
                    ("iou", self.iou != defaults.iou),
                    ("overlap", self.overlap.is_some()),
                    ("merge_iou", self.merge_iou != defaults.merge_iou),
                ];
                refuse_set(&det_only, "det")?;
                self.seg_data()?;
                crate::ensure_param!(
                    self.stride != Some(0),
                    "stride",
                    "`stride` must be positive"
                );
            }
            EvalTask::Det => {
                let seg_only = [
                    ("val_tiles", self.val_tiles.is_some()),
                    ("clutter", self.clutter),
                    ("labels", self.labels.is_some()),
                    ("stride", self.stride.is_some()),
                    ("flip", self.flip),
                ];
                refuse_set(&seg_only, "seg")?;
                self.det_data()?.class_names()?;
                crate::ensure_param!(self.iou > 0.0, "iou", "`iou` must be in (0, 1]");
            }
        }
        Ok(())
    }

    /// Whether the stage predicts the hidden-label test split for an evaluation server.
    pub fn predicts_test(&self) -> bool {
        self.split == "test"
    }

    /// `split = "test"` applies to DOTA and LoveDA, whose test labels only their servers hold,
    /// and takes no local scoring setting.
    fn check_test_split(&self, defaults: &Self) -> anyhow::Result<()> {
        let format = self.format.as_deref().unwrap_or_default();
        crate::ensure_param!(
            matches!(format, "dota" | "loveda"),
            "split",
            help = "remove `split`",
            "`split = \"test\"` predicts the hidden test labels of dota or loveda for their evaluation servers; {format} publishes its test labels, which the default split scores here"
        );
        let scoring = [
            ("protocol", self.protocol.is_some()),
            ("ap_metric", self.ap_metric != defaults.ap_metric),
            ("iou", self.iou != defaults.iou),
        ];
        if let Some((name, _)) = scoring.iter().find(|(_, set)| *set) {
            return Err(ParamError::new(
                *name,
                format!("`{name}` sets how this study scores, and with `split = \"test\"` the evaluation server scores under its own protocol"),
            )
            .help(format!("remove `{name}`"))
            .into());
        }
        Ok(())
    }

    /// The task, which the plan always sets.
    pub fn task(&self) -> anyhow::Result<EvalTask> {
        self.task.ok_or_else(|| {
            ParamError::new("task", "`task` is not set")
                .help("use seg or det")
                .into()
        })
    }

    /// The segmentation dataset scored.
    pub fn seg_data(&self) -> anyhow::Result<SegDataParams> {
        let format = self.format_as("seg")?;
        crate::ensure_param!(
            !self.clutter || format == SegFormat::Potsdam,
            "clutter",
            help = "remove it",
            "`clutter` applies to Potsdam only"
        );
        Ok(SegDataParams {
            name: resolved_dataset(&self.dataset)?,
            format,
            val_tiles: self.val_tiles.clone(),
            labels: potsdam_labels(self.labels, format)?,
            clutter: self.clutter,
            trainval: false,
        })
    }

    /// The detection dataset scored.
    pub fn det_data(&self) -> anyhow::Result<DetDataParams> {
        Ok(DetDataParams {
            name: resolved_dataset(&self.dataset)?,
            format: self.format_as("det")?,
            version: self.version.clone(),
            trainval: false,
        })
    }

    /// `format` as the layout type of `task`.
    fn format_as<T: DeserializeOwned>(&self, task: &str) -> anyhow::Result<T> {
        let format = self
            .format
            .as_deref()
            .ok_or_else(|| ParamError::new("format", "`format` is not set"))?;
        serde_json::from_value(format.into()).map_err(|_| {
            ParamError::new(
                "format",
                format!("format `{format}` does not fit task = \"{task}\""),
            )
            .help(if task == "seg" {
                "use loveda or potsdam"
            } else {
                "use dota or dior-r"
            })
            .into()
        })
    }
}

/// Fails on the first key set among `keys` (name, whether set), which apply only to `task`.
fn refuse_set(keys: &[(&str, bool)], task: &str) -> anyhow::Result<()> {
    match keys.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(ParamError::new(
            *name,
            format!("`{name}` applies only when scoring task = \"{task}\""),
        )
        .help("remove it")
        .into()),
        None => Ok(()),
    }
}
