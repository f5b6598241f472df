//! Dataset layouts and the other choices stage parameters name.

use crate::params::ParamError;
use serde::{Deserialize, Serialize};

use super::types::ParamType;
use crate::data::formats::dior::DIOR_CLASSES;
use crate::data::formats::dota::DotaVersion;
use crate::data::formats::loveda;
use crate::data::formats::potsdam::PotsdamLabels;

/// Segmentation dataset layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegFormat {
    /// LoveDA: `Train/` for training, `Val/` for evaluation; no-data ignored.
    Loveda,
    /// ISPRS Potsdam: clutter and unlabelled pixels ignored.
    Potsdam,
}

impl SegFormat {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["loveda", "potsdam"];

    /// Classes scored and predicted.
    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// Class names, in label order.
    pub fn class_names(self) -> Vec<String> {
        match self {
            SegFormat::Loveda => loveda::LOVEDA_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            SegFormat::Potsdam => [
                "impervious_surfaces",
                "building",
                "low_vegetation",
                "tree",
                "car",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Detection dataset layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetFormat {
    /// DOTA: `train/` for training, `val/` for evaluation.
    Dota,
    /// DIOR-R: `trainval` for training, `test` for evaluation.
    DiorR,
}

impl DetFormat {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["dota", "dior-r"];

    /// The usual AP protocol of the dataset: the DOTA devkit, or MMRotate for DIOR-R.
    pub fn default_protocol(self) -> &'static str {
        match self {
            DetFormat::Dota => "devkit",
            DetFormat::DiorR => "mmrotate",
        }
    }
}

/// What an `evaluate` stage scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalTask {
    /// Semantic segmentation: mIoU, OA, mF1.
    Seg,
    /// Rotated object detection: mAP.
    Det,
}

impl EvalTask {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["seg", "det"];
}

/// Every dataset layout a stage may read.
pub const DATA_FORMATS: ParamType = ParamType::Choice(&["loveda", "potsdam", "dota", "dior-r"]);
/// The DOTA releases whose class lists rsfm knows.
pub const DOTA_RELEASES: ParamType = ParamType::Choice(&["v1.0", "v1.5", "v2.0"]);
/// The AP protocols of `rsfm eval dota`.
pub const AP_PROTOCOLS: ParamType = ParamType::Choice(&["devkit", "devkit-v1.5", "mmrotate"]);
/// What an `evaluate` stage reads: the labelled part this study holds out, or the hidden-label
/// test split an evaluation server scores.
pub const EVAL_SPLITS: ParamType = ParamType::Choice(&["held-out", "test"]);
/// VOC07 11-point or VOC12 area AP.
pub const AP_METRICS: ParamType = ParamType::Choice(&["voc07", "voc12"]);

/// The segmentation dataset a stage reads, resolved from its `dataset`, `format` and
/// `val_tiles` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SegDataParams {
    /// Key in `stage.json`'s `datasets`.
    pub name: String,
    /// Its layout.
    pub format: SegFormat,
    /// Potsdam tiles held out for evaluation (`None`: the standard 14 test tiles).
    pub val_tiles: Option<Vec<String>>,
    /// Potsdam: which reference labels are read.
    pub labels: PotsdamLabels,
    /// Potsdam: clutter scored as a sixth class (ISPRS's all-class protocol) rather than
    /// ignored; evaluation only (training always ignores it).
    pub clutter: bool,
    /// Training reads `Train/` and `Val/` together (LoveDA, for the test server).
    pub trainval: bool,
}

impl SegDataParams {
    /// The part a fine-tuning stage learns from.
    pub fn training_part(&self) -> crate::data::seg_samples::Part {
        training_part(self.trainval)
    }

    /// The classes a score covers: the model's, plus `clutter` when it is scored.
    pub fn scored_classes(&self) -> Vec<String> {
        let mut names = self.format.class_names();
        if self.clutter {
            names.push("clutter".to_string());
        }
        names
    }
}

/// The Potsdam label variant of a stage, refused for other layouts.
pub fn potsdam_labels(
    labels: Option<PotsdamLabels>,
    format: SegFormat,
) -> anyhow::Result<PotsdamLabels> {
    match (labels, format) {
        (Some(_), SegFormat::Loveda) => Err(ParamError::new(
            "labels",
            "`labels` picks Potsdam's full or eroded labels, and this stage reads LoveDA",
        )
        .help("remove `labels`")
        .into()),
        (labels, _) => Ok(labels.unwrap_or_default()),
    }
}

/// The detection dataset a stage reads, resolved from its `dataset`, `format` and `version`
/// parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct DetDataParams {
    /// Key in `stage.json`'s `datasets`.
    pub name: String,
    /// Its layout.
    pub format: DetFormat,
    /// DOTA release whose classes are used (`v1.0`, `v1.5`, `v2.0`).
    pub version: String,
    /// Training reads `train/` and `val/` together (DOTA, for the test server).
    pub trainval: bool,
}

impl DetDataParams {
    /// The part a fine-tuning stage learns from.
    pub fn training_part(&self) -> crate::data::seg_samples::Part {
        training_part(self.trainval)
    }

    /// Class names, in label order.
    pub fn class_names(&self) -> anyhow::Result<Vec<String>> {
        let names: Vec<&str> = match self.format {
            DetFormat::Dota => self.dota_version()?.classes().to_vec(),
            DetFormat::DiorR => DIOR_CLASSES.to_vec(),
        };
        Ok(names.into_iter().map(String::from).collect())
    }

    /// The usual AP protocol of the dataset.
    pub fn default_protocol(&self) -> &'static str {
        self.format.default_protocol()
    }

    /// The DOTA release named by `version`.
    pub fn dota_version(&self) -> anyhow::Result<DotaVersion> {
        self.version
            .parse()
            .map_err(|e: String| ParamError::new("version", format!("params.version: {e}")).into())
    }
}

/// Train and val together when `trainval`, else train.
fn training_part(trainval: bool) -> crate::data::seg_samples::Part {
    use crate::data::seg_samples::Part;
    if trainval {
        Part::TrainVal
    } else {
        Part::Train
    }
}

/// The name of the dataset a stage reads: the plan always sets `dataset`.
pub fn resolved_dataset(dataset: &Option<String>) -> anyhow::Result<String> {
    dataset.clone().ok_or_else(|| {
        ParamError::new(
            "dataset",
            "params.dataset is not set: the plan names the dataset every worker stage reads",
        )
        .into()
    })
}
