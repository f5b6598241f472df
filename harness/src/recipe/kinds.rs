//! Stage kinds and the parameters each accepts, with their types.
//!
//! To add a parameter, add a [`ParamSpec`] line to the kind's table; the loader checks names
//! and types from these tables alone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// Prepare a dataset: split, tile or synthesise it.
    Prepare,
    /// Masked-autoencoder pretraining of a ViT backbone.
    MaePretrain,
    /// Fine-tune for rotated object detection (ViTDet-style backbone, Oriented R-CNN).
    FinetuneDet,
    /// Fine-tune for semantic segmentation (UperNet head).
    FinetuneSeg,
    /// Evaluate predictions or a fine-tuned model.
    Evaluate,
    /// Run any program given as an argv list.
    Command,
}

impl StageKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [StageKind; 6] = [
        StageKind::Prepare,
        StageKind::MaePretrain,
        StageKind::FinetuneDet,
        StageKind::FinetuneSeg,
        StageKind::Evaluate,
        StageKind::Command,
    ];

    /// The spelling in recipes: `mae-pretrain`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Prepare => "prepare",
            StageKind::MaePretrain => "mae-pretrain",
            StageKind::FinetuneDet => "finetune-det",
            StageKind::FinetuneSeg => "finetune-seg",
            StageKind::Evaluate => "evaluate",
            StageKind::Command => "command",
        }
    }

    /// The kind spelled `text` in a recipe.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The parameters this kind accepts.
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            StageKind::Prepare => PREPARE,
            StageKind::MaePretrain => MAE_PRETRAIN,
            StageKind::FinetuneDet => FINETUNE_DET,
            StageKind::FinetuneSeg => FINETUNE_SEG,
            StageKind::Evaluate => EVALUATE,
            StageKind::Command => COMMAND,
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a kind-specific parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamType {
    /// A string.
    Str,
    /// A non-negative integer.
    Count,
    /// A finite number (integers are stored as floats).
    Float,
    /// A number between 0 and 1 inclusive.
    Ratio,
    /// A boolean.
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// An array of strings.
    StrList,
    /// A non-empty array of strings: a program and its arguments.
    Argv,
    /// An array of non-negative integers.
    CountList,
    /// An array of finite numbers.
    FloatList,
}

impl ParamType {
    /// How the type reads in messages: `integer`, `array of strings`.
    pub fn describe(self) -> String {
        match self {
            ParamType::Str => "string".to_string(),
            ParamType::Count => "integer".to_string(),
            ParamType::Float => "float".to_string(),
            ParamType::Ratio => "float between 0 and 1".to_string(),
            ParamType::Bool => "boolean".to_string(),
            ParamType::Choice(options) => format!("one of {}", options.join(", ")),
            ParamType::StrList => "array of strings".to_string(),
            ParamType::Argv => "non-empty array of strings".to_string(),
            ParamType::CountList => "array of integers".to_string(),
            ParamType::FloatList => "array of floats".to_string(),
        }
    }
}

impl ParamType {
    /// The type of the elements, for array types.
    pub fn element(self) -> Option<ParamType> {
        match self {
            ParamType::StrList | ParamType::Argv => Some(ParamType::Str),
            ParamType::CountList => Some(ParamType::Count),
            ParamType::FloatList => Some(ParamType::Float),
            _ => None,
        }
    }
}

/// One parameter a kind accepts.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its key in the stage table.
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// Whether the stage must set it.
    pub required: bool,
    /// What it means.
    pub doc: &'static str,
}

const fn opt(name: &'static str, ty: ParamType, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required: false,
        doc,
    }
}

const fn req(name: &'static str, ty: ParamType, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required: true,
        doc,
    }
}

use ParamType::{Argv, Bool, Choice, Count, CountList, Float, FloatList, Ratio, Str, StrList};

const PRECISIONS: &[&str] = &["fp32", "bf16", "fp16"];
const DOTA_PROTOCOLS: &[&str] = &["devkit", "devkit-v1.5", "mmrotate"];
const AP_METRICS: &[&str] = &["voc07", "voc12"];
const SPLITS: &[&str] = &["train", "val", "trainval", "test"];

const COMMAND: &[ParamSpec] = &[
    req(
        "argv",
        Argv,
        "program and arguments, no shell; placeholders allowed",
    ),
    opt(
        "deps",
        StrList,
        "files whose content enters the key, relative to the recipe folder",
    ),
];

const PREPARE: &[ParamSpec] = &[
    opt(
        "dataset",
        Str,
        "dataset to prepare (a name under [dataset])",
    ),
    opt("format", Str, "on-disk format to read or write"),
    opt("split", Choice(SPLITS), "split to prepare"),
    opt(
        "synthetic",
        Bool,
        "synthesise data in the dataset's real format",
    ),
    opt("images", Count, "number of synthetic images"),
    opt("image_size", Count, "side of synthetic images in pixels"),
    opt(
        "patch_size",
        Count,
        "side of the tiles cut from large images",
    ),
    opt("overlap", Count, "overlap of neighbouring tiles in pixels"),
    opt(
        "stride",
        Count,
        "tile stride in pixels (instead of overlap)",
    ),
    opt("scales", FloatList, "resize factors applied before tiling"),
    opt(
        "fraction",
        Ratio,
        "keep this fraction of the training images",
    ),
    opt("classes", StrList, "class names, in label order"),
];

const MAE_PRETRAIN: &[ParamSpec] = &[
    req("model", Str, "backbone name (recipes/models)"),
    opt("embed_dim", Count, "token width, overriding the model's"),
    opt(
        "depth",
        Count,
        "number of transformer blocks, overriding the model's",
    ),
    opt(
        "num_heads",
        Count,
        "attention heads, overriding the model's",
    ),
    opt(
        "mlp_dim",
        Count,
        "hidden width of the MLP, overriding the model's",
    ),
    opt(
        "parallel",
        Count,
        "parallel branches per block stage (e.g. 4 for 12x4)",
    ),
    opt("patch_size", Count, "patch side in pixels"),
    opt("image_size", Count, "input side in pixels"),
    opt("dataset", Str, "pretraining dataset name"),
    opt("fraction", Ratio, "fraction of the dataset used"),
    opt("epochs", Count, "training epochs"),
    opt("steps", Count, "training steps (instead of epochs)"),
    opt("batch_size", Count, "images per optimisation step"),
    opt("accumulate", Count, "gradient accumulation steps"),
    opt("lr", Float, "learning rate"),
    opt(
        "base_lr",
        Float,
        "learning rate per 256 images, scaled by batch size",
    ),
    opt(
        "min_lr",
        Float,
        "final learning rate of the cosine schedule",
    ),
    opt("weight_decay", Float, "AdamW weight decay"),
    opt("betas", FloatList, "AdamW betas"),
    opt("warmup_epochs", Count, "linear warmup epochs"),
    opt("warmup_steps", Count, "linear warmup steps"),
    opt("clip_grad", Float, "gradient norm clip"),
    opt("mask_ratio", Ratio, "fraction of patches masked"),
    opt("norm_pix_loss", Bool, "normalise target pixels per patch"),
    opt("decoder_embed_dim", Count, "decoder width"),
    opt("decoder_depth", Count, "decoder blocks"),
    opt("decoder_num_heads", Count, "decoder attention heads"),
    opt("precision", Choice(PRECISIONS), "numeric precision"),
    opt(
        "checkpoint_every",
        Count,
        "steps between resume checkpoints",
    ),
];

const FINETUNE_DET: &[ParamSpec] = &[
    req("model", Str, "backbone name (recipes/models)"),
    opt(
        "checkpoint",
        Str,
        "pretrained weights, e.g. `{input.pretrain}/checkpoint.safetensors`",
    ),
    opt("detector", Str, "detector head (default oriented-rcnn)"),
    opt("dataset", Str, "dataset name"),
    opt("num_classes", Count, "number of object classes"),
    opt("fraction", Ratio, "fraction of the training set"),
    opt("image_size", Count, "input side in pixels"),
    opt("window_size", Count, "window attention size in tokens"),
    opt(
        "global_blocks",
        CountList,
        "indices of blocks with global attention",
    ),
    opt("epochs", Count, "training epochs (1x = 12)"),
    opt("steps", Count, "training steps (instead of epochs)"),
    opt("batch_size", Count, "images per optimisation step"),
    opt("lr", Float, "learning rate"),
    opt("weight_decay", Float, "AdamW weight decay"),
    opt("layer_decay", Ratio, "layer-wise learning-rate decay"),
    opt("drop_path", Ratio, "stochastic depth rate"),
    opt("warmup_steps", Count, "linear warmup steps"),
    opt(
        "lr_steps",
        CountList,
        "epochs or steps where the learning rate drops",
    ),
    opt("score_threshold", Ratio, "minimum detection score kept"),
    opt("nms_iou", Ratio, "rotated NMS IoU threshold"),
    opt("max_detections", Count, "detections kept per image"),
    opt("precision", Choice(PRECISIONS), "numeric precision"),
    opt(
        "checkpoint_every",
        Count,
        "steps between resume checkpoints",
    ),
];

const FINETUNE_SEG: &[ParamSpec] = &[
    req("model", Str, "backbone name (recipes/models)"),
    opt(
        "checkpoint",
        Str,
        "pretrained weights, e.g. `{input.pretrain}/checkpoint.safetensors`",
    ),
    opt("head", Str, "decode head (default upernet)"),
    opt("dataset", Str, "dataset name"),
    opt("num_classes", Count, "number of classes"),
    opt("ignore_index", Count, "label ignored in loss and metrics"),
    opt(
        "reduce_zero_label",
        Bool,
        "shift labels down by one, 0 becomes ignored",
    ),
    opt("fraction", Ratio, "fraction of the training set"),
    opt("crop_size", Count, "training crop side in pixels"),
    opt("stride", Count, "sliding-window stride at test time"),
    opt("window_size", Count, "window attention size in tokens"),
    opt(
        "global_blocks",
        CountList,
        "indices of blocks with global attention",
    ),
    opt("epochs", Count, "training epochs"),
    opt("steps", Count, "training iterations"),
    opt("batch_size", Count, "images per optimisation step"),
    opt("lr", Float, "learning rate"),
    opt("weight_decay", Float, "AdamW weight decay"),
    opt("layer_decay", Ratio, "layer-wise learning-rate decay"),
    opt("drop_path", Ratio, "stochastic depth rate"),
    opt("warmup_steps", Count, "linear warmup steps"),
    opt("precision", Choice(PRECISIONS), "numeric precision"),
    opt(
        "checkpoint_every",
        Count,
        "steps between resume checkpoints",
    ),
];

const EVALUATE: &[ParamSpec] = &[
    opt("task", Choice(&["det", "seg"]), "what is evaluated"),
    opt("dataset", Str, "dataset name"),
    opt("split", Choice(SPLITS), "split evaluated"),
    opt("checkpoint", Str, "fine-tuned weights to predict with"),
    opt("predictions", Str, "existing predictions to score instead"),
    opt("protocol", Choice(DOTA_PROTOCOLS), "detection AP protocol"),
    opt(
        "ap_metric",
        Choice(AP_METRICS),
        "VOC07 11-point or VOC12 area AP",
    ),
    opt(
        "metric",
        Str,
        "the headline metric, e.g. map, miou, oa, mf1",
    ),
    opt("iou", Ratio, "IoU threshold for a true positive"),
    opt("num_classes", Count, "number of classes"),
    opt("classes", StrList, "class names, in label order"),
    opt("ignore_index", Count, "label ignored in metrics"),
    opt(
        "reduce_zero_label",
        Bool,
        "shift labels down by one, 0 becomes ignored",
    ),
    opt(
        "exclude_from_mean",
        CountList,
        "classes left out of mean metrics (e.g. clutter)",
    ),
    opt("patch_size", Count, "tile side for large images"),
    opt("overlap", Count, "tile overlap in pixels"),
    opt("crop_size", Count, "sliding-window side in pixels"),
    opt("stride", Count, "sliding-window stride in pixels"),
    opt("merge_nms_iou", Ratio, "rotated NMS IoU when merging tiles"),
    opt("batch_size", Count, "images per forward pass"),
    opt("model", Str, "backbone name (recipes/models)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_spelling() {
        for kind in StageKind::ALL {
            assert_eq!(StageKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(StageKind::parse("train"), None);
    }

    #[test]
    fn parameter_names_are_unique_per_kind() {
        for kind in StageKind::ALL {
            let names: Vec<_> = kind.params().iter().map(|spec| spec.name).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{kind}");
        }
    }
}
