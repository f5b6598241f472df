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
    /// Prepare a dataset: split, tile or synthesise it. No worker runs this kind yet: the plan
    /// refuses it; a `command` stage running `rsfm synth` (or a preparation script) does the job.
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

use ParamType::{Argv, Bool, Choice, Count, CountList, Float, Ratio, Str, StrList};

const DOTA_PROTOCOLS: &[&str] = &["devkit", "devkit-v1.5", "mmrotate"];
const AP_METRICS: &[&str] = &["voc07", "voc12"];
const SEG_FORMATS: &[&str] = &["loveda", "potsdam"];
const DET_FORMATS: &[&str] = &["dota", "dior-r"];
const ALL_FORMATS: &[&str] = &["loveda", "potsdam", "dota", "dior-r"];
const DOTA_VERSIONS: &[&str] = &["v1.0", "v1.5", "v2.0"];

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

/// `prepare` has no parameters: no worker runs it, and the plan refuses it with a pointer to
/// `command` stages running `rsfm synth` (or any preparation script).
const PREPARE: &[ParamSpec] = &[];

/// A table of the backbone parameters (a preset and overrides of its `[vit]` fields; the
/// input side is per kind) followed by the kind's own.
macro_rules! with_backbone {
    ($($own:expr),* $(,)?) => {
        &[
            req(
                "model",
                Str,
                "backbone preset: recipes/models/NAME.toml, searched from the recipe's folder upwards; its [vit] table is the architecture",
            ),
            opt("patch_size", Count, "patch side in pixels, overriding the preset's"),
            opt("embed_dim", Count, "token width, overriding the preset's"),
            opt("depth", Count, "sequential block stages, overriding the preset's"),
            opt("parallel", Count, "parallel branches per stage, overriding the preset's"),
            opt("num_heads", Count, "attention heads, overriding the preset's"),
            opt("mlp_ratio", Float, "MLP width over token width, overriding the preset's"),
            opt("qkv_bias", Bool, "bias on the attention projections, overriding the preset's"),
            opt("drop_path", Ratio, "stochastic depth rate, overriding the preset's"),
            $($own),*
        ]
    };
}

const DATASET_DOC: &str = "the data: a name in the stage's `datasets`, or a needed stage whose output is a dataset (default: the only entry of `datasets`)";
const SEG_FORMAT_DOC: &str = "segmentation layout, loveda (7 classes) or potsdam (5 classes, clutter ignored); default: the dataset's `format`";
const DET_FORMAT_DOC: &str = "detection layout, dota or dior-r; default: the dataset's `format`";
const VAL_TILES_DOC: &str =
    "Potsdam tiles held out for evaluation (default: the 14 standard test tiles)";
const VERSION_DOC: &str =
    "DOTA release whose classes are used (default v1.0; synthetic DOTA is v2.0)";
const PRETRAINED_DOC: &str = "a needed mae-pretrain stage whose checkpoint initialises the backbone (default: the only needed mae-pretrain stage, if any)";
const CHECKPOINT_EVERY_DOC: &str =
    "steps between resume checkpoints (default 0: only when stopped)";
const LOG_EVERY_DOC: &str = "steps between progress events (default 1)";
const WINDOW_DOC: &str = "window attention side in tokens (default 14)";
const GLOBAL_DOC: &str =
    "block stages with global attention (default: 4 evenly spaced, the last included)";

const MAE_PRETRAIN: &[ParamSpec] = with_backbone![
    opt(
        "image_size",
        Count,
        "input side in pixels, overriding the preset's"
    ),
    opt("dataset", Str, DATASET_DOC),
    opt("steps", Count, "optimiser steps (needed to run)"),
    opt(
        "batch_size",
        Count,
        "images per optimiser step (needed to run)"
    ),
    opt(
        "base_lr",
        Float,
        "learning rate per 256 images: lr = base_lr × batch_size / 256 (default 1.5e-4)",
    ),
    opt(
        "min_lr",
        Float,
        "learning rate at the end of the cosine (default 0)"
    ),
    opt("warmup_steps", Count, "steps of linear warmup (default 0)"),
    opt(
        "weight_decay",
        Float,
        "AdamW weight decay, not on norms, biases, tokens or position tables (default 0.05)",
    ),
    opt(
        "mask_ratio",
        Ratio,
        "fraction of patches masked (default 0.75)"
    ),
    opt(
        "norm_pix_loss",
        Bool,
        "normalise target pixels per patch (default true)"
    ),
    opt("decoder_embed_dim", Count, "decoder width (default 512)"),
    opt("decoder_depth", Count, "decoder blocks (default 8)"),
    opt(
        "decoder_num_heads",
        Count,
        "decoder attention heads (default 16)"
    ),
    opt(
        "precision",
        Str,
        "fp32 or bf16 (autocast, fp32 master weights); default bf16 on a GPU, fp32 on a CPU"
    ),
    opt("checkpoint_every", Count, CHECKPOINT_EVERY_DOC),
    opt("log_every", Count, LOG_EVERY_DOC),
];

const FINETUNE_SEG: &[ParamSpec] = with_backbone![
    opt("crop_size", Count, "training crop side in pixels (the backbone's input side), overriding the preset's image_size"),
    opt("window_size", Count, WINDOW_DOC),
    opt("global_blocks", CountList, GLOBAL_DOC),
    opt("head_channels", Count, "UperNet width (default 512)"),
    opt("dataset", Str, DATASET_DOC),
    opt("format", Choice(SEG_FORMATS), SEG_FORMAT_DOC),
    opt("val_tiles", StrList, VAL_TILES_DOC),
    opt("fraction", Ratio, "fraction of the training images, chosen from the seed (default 1)"),
    opt("pretrained", Str, PRETRAINED_DOC),
    opt("steps", Count, "optimiser steps (needed to run)"),
    opt("batch_size", Count, "crops per optimiser step (needed to run)"),
    opt("lr", Float, "peak learning rate (default 6e-5)"),
    opt("min_lr", Float, "learning rate at the end of the cosine (default 0)"),
    opt("warmup_steps", Count, "steps of linear warmup (default 0)"),
    opt("weight_decay", Float, "AdamW weight decay (default 0.01)"),
    opt("layer_decay", Ratio, "layer-wise learning-rate decay per stage (default 0.9)"),
    opt("checkpoint_every", Count, CHECKPOINT_EVERY_DOC),
    opt("log_every", Count, LOG_EVERY_DOC),
];

const FINETUNE_DET: &[ParamSpec] = with_backbone![
    opt(
        "image_size",
        Count,
        "training crop side in pixels, overriding the preset's (1024 for DOTA)"
    ),
    opt("window_size", Count, WINDOW_DOC),
    opt("global_blocks", CountList, GLOBAL_DOC),
    opt("dataset", Str, DATASET_DOC),
    opt("format", Choice(DET_FORMATS), DET_FORMAT_DOC),
    opt("version", Choice(DOTA_VERSIONS), VERSION_DOC),
    opt(
        "fraction",
        Ratio,
        "fraction of the training images, chosen from the seed (default 1)"
    ),
    opt("pretrained", Str, PRETRAINED_DOC),
    opt(
        "epochs",
        Count,
        "training epochs when `steps` is not set (default 12, the 1x schedule)"
    ),
    opt("steps", Count, "optimiser steps, overriding `epochs`"),
    opt(
        "batch_size",
        Count,
        "images per optimiser step (needed to run)"
    ),
    opt("lr", Float, "peak learning rate (default 1e-4)"),
    opt(
        "warmup_steps",
        Count,
        "steps of linear warmup from a third of lr (default 0)"
    ),
    opt(
        "lr_steps",
        CountList,
        "steps after which lr drops ×0.1 (default: 8/12 and 11/12 of training)"
    ),
    opt("weight_decay", Float, "AdamW weight decay (default 0.05)"),
    opt(
        "layer_decay",
        Ratio,
        "layer-wise learning-rate decay per stage (default 0.75)"
    ),
    opt(
        "flips",
        Bool,
        "random horizontal and vertical flips (default true)"
    ),
    opt("rotate90", Bool, "random quarter turns (default true)"),
    opt("channels", Count, "FPN and RPN width (default 256)"),
    opt(
        "anchor_scale",
        Float,
        "anchor side over the level's stride (default 8)"
    ),
    opt(
        "finest_scale",
        Float,
        "RoI side mapped to the finest level (default 56)"
    ),
    opt(
        "fc_dim",
        Count,
        "width of the RoI head's fully connected layers (default 1024)"
    ),
    opt(
        "rpn_pre_nms",
        Count,
        "proposals per level before the RPN's NMS (default 2000)"
    ),
    opt(
        "rpn_post_nms",
        Count,
        "proposals kept after the RPN's NMS (default 2000)"
    ),
    opt(
        "rpn_batch",
        Count,
        "anchors sampled per image for the RPN loss (default 256)"
    ),
    opt(
        "roi_batch",
        Count,
        "proposals sampled per image for the RoI loss (default 512)"
    ),
    opt(
        "score_threshold",
        Ratio,
        "minimum detection score kept (default 0.05)"
    ),
    opt("nms_iou", Ratio, "rotated NMS IoU per class (default 0.1)"),
    opt(
        "max_detections",
        Count,
        "detections kept per image (default 2000)"
    ),
    opt("checkpoint_every", Count, CHECKPOINT_EVERY_DOC),
    opt("log_every", Count, LOG_EVERY_DOC),
];

const EVALUATE: &[ParamSpec] = &[
    opt(
        "task",
        Choice(&["seg", "det"]),
        "what is scored (default: from the kind of the `model_from` stage)",
    ),
    opt(
        "model_from",
        Str,
        "the needed finetune-seg or finetune-det stage whose model is scored (default: the only needed one)",
    ),
    opt("dataset", Str, DATASET_DOC),
    opt("format", Choice(ALL_FORMATS), "dataset layout (seg: loveda, potsdam; det: dota, dior-r); default: the dataset's `format`"),
    opt("val_tiles", StrList, "seg: Potsdam tiles scored (default: the 14 standard test tiles)"),
    opt("version", Choice(DOTA_VERSIONS), "det: DOTA release whose classes are used (default v1.0)"),
    opt("stride", Count, "seg: sliding-window stride in pixels (default: two thirds of the crop)"),
    opt("protocol", Choice(DOTA_PROTOCOLS), "det: AP protocol (default: devkit for DOTA, mmrotate for DIOR-R)"),
    opt("ap_metric", Choice(AP_METRICS), "det: VOC07 11-point or VOC12 area AP (default voc07)"),
    opt("iou", Ratio, "det: IoU threshold of a true positive (default 0.5)"),
    opt("overlap", Count, "det: gap between prediction patches in pixels (default: a fifth of the input side)"),
    opt("merge_nms_iou", Ratio, "det: rotated NMS IoU when merging patch detections (default 0.1)"),
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
