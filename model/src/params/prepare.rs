//! Parameters of a `prepare` stage: a dataset written by `rsfm prepare` (synthesised, tiled or
//! cropped).

use crate::data::formats::potsdam::PotsdamLabels;
use crate::params::ParamError;
use serde::{Deserialize, Serialize};

use crate::data::synth::SynthDataset;
use crate::params::data::{AP_METRICS, AP_PROTOCOLS, DOTA_RELEASES};

/// What a `prepare` stage writes (required in recipes; `Default` only fills the schema struct).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrepareOp {
    /// Synthetic DOTA v2.0 (what `rsfm synth dota` writes).
    #[default]
    #[serde(rename = "synth-dota")]
    SynthDota,
    /// Synthetic DIOR-R.
    #[serde(rename = "synth-dior-r")]
    SynthDiorR,
    /// Synthetic ISPRS Potsdam.
    #[serde(rename = "synth-potsdam")]
    SynthPotsdam,
    /// Synthetic LoveDA.
    #[serde(rename = "synth-loveda")]
    SynthLoveda,
    /// Synthetic Million-AID scenes.
    #[serde(rename = "synth-millionaid")]
    SynthMillionaid,
    /// DOTA's `train/` and `val/` cut into overlapping square patches (DOTA devkit split).
    #[serde(rename = "tile-dota")]
    TileDota,
    /// ISPRS Potsdam's RGB tiles and labels cut into square crops, in the Potsdam layout.
    #[serde(rename = "crop-potsdam")]
    CropPotsdam,
    /// LoveDA's Train and Val images and masks cut into square crops, in the LoveDA layout.
    #[serde(rename = "crop-loveda")]
    CropLoveda,
    /// The stored predictions of a Potsdam evaluation scored again against other reference
    /// labels (`labels`), without the model: `metrics.json` as the evaluation writes it.
    #[serde(rename = "rescore-potsdam")]
    RescorePotsdam,
    /// The merged detections of a DOTA evaluation scored again under another AP protocol,
    /// variant or IoU, without the model.
    #[serde(rename = "rescore-dota")]
    RescoreDota,
    /// The same for a DIOR-R evaluation.
    #[serde(rename = "rescore-dior-r")]
    RescoreDiorR,
}

impl PrepareOp {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &[
        "synth-dota",
        "synth-dior-r",
        "synth-potsdam",
        "synth-loveda",
        "synth-millionaid",
        "tile-dota",
        "crop-potsdam",
        "crop-loveda",
        "rescore-potsdam",
        "rescore-dota",
        "rescore-dior-r",
    ];

    /// The dataset a `synth-*` op imitates; `None` for ops that read a dataset.
    pub fn synth_dataset(self) -> Option<SynthDataset> {
        match self {
            PrepareOp::SynthDota => Some(SynthDataset::Dota),
            PrepareOp::SynthDiorR => Some(SynthDataset::DiorR),
            PrepareOp::SynthPotsdam => Some(SynthDataset::Potsdam),
            PrepareOp::SynthLoveda => Some(SynthDataset::Loveda),
            PrepareOp::SynthMillionaid => Some(SynthDataset::MillionAid),
            PrepareOp::TileDota
            | PrepareOp::CropPotsdam
            | PrepareOp::CropLoveda
            | PrepareOp::RescorePotsdam
            | PrepareOp::RescoreDota
            | PrepareOp::RescoreDiorR => None,
        }
    }

    /// The format of the dataset the op reads (`dota`, `potsdam`, `loveda`); `None` for the
    /// synth ops, which read nothing.
    pub fn source_format(self) -> Option<&'static str> {
        match self {
            PrepareOp::TileDota | PrepareOp::RescoreDota => Some("dota"),
            PrepareOp::RescoreDiorR => Some("dior-r"),
            PrepareOp::CropPotsdam | PrepareOp::RescorePotsdam => Some("potsdam"),
            PrepareOp::CropLoveda => Some("loveda"),
            _ => None,
        }
    }

    /// The crop side and stride a `crop-*` op uses when the stage sets none; `None` for the
    /// other ops.
    pub fn crop_defaults(self) -> Option<(u32, u32)> {
        match self {
            // PAPER.md, protocol of the closest prior work (RVSA): 512×512 crops, stride 384.
            PrepareOp::CropPotsdam => Some((512, 384)),
            // LoveDA's 1024×1024 images into four non-overlapping 512×512 crops (512 is the
            // crop side of RVSA and MMSegmentation's LoveDA configurations).
            PrepareOp::CropLoveda => Some((512, 512)),
            _ => None,
        }
    }

    /// Whether the op scores an evaluation again (`rescore-*`) rather than writing a dataset.
    pub fn is_rescore(self) -> bool {
        matches!(
            self,
            PrepareOp::RescorePotsdam | PrepareOp::RescoreDota | PrepareOp::RescoreDiorR
        )
    }

    /// The spelling in recipes.
    pub fn as_str(self) -> &'static str {
        let index = [
            PrepareOp::SynthDota,
            PrepareOp::SynthDiorR,
            PrepareOp::SynthPotsdam,
            PrepareOp::SynthLoveda,
            PrepareOp::SynthMillionaid,
            PrepareOp::TileDota,
            PrepareOp::CropPotsdam,
            PrepareOp::CropLoveda,
            PrepareOp::RescorePotsdam,
            PrepareOp::RescoreDota,
            PrepareOp::RescoreDiorR,
        ]
        .iter()
        .position(|op| *op == self)
        .unwrap_or_default();
        Self::SPELLINGS[index]
    }
}

crate::schema! {
    /// Parameters of a `prepare` stage: `rsfm prepare` (no libtorch) writes a dataset into the
    /// stage's output, which needing stages read with `dataset = "<this stage>"`. Synthetic
    /// data takes the stage's seed.
    pub struct PrepareParams includes {} {
        /// What the stage writes: `synth-<dataset>` a synthetic dataset in that dataset's
        /// format, `tile-dota` the patches of a DOTA root, `crop-potsdam` / `crop-loveda` the
        /// crops of a Potsdam / LoveDA root in that dataset's layout (crop `<id>__1__<x>___<y>`
        /// of image `<id>`, in the held-out or training part of its source image).
        op: PrepareOp,
        /// synth-*: number of images over both splits (the last fifth is held out).
        images: usize = 10,
        /// synth-*: image side in pixels (unset: the dataset's usual tile size).
        size: Option<u32> = None,
        /// synth-dota, synth-loveda: unlabelled images of the hidden-label test split besides
        /// `images` (DOTA `test-dev/`, LoveDA `Test/`).
        test_images: usize = 0,
        /// tile-dota, crop-*: the dataset to cut, a name in the stage's `datasets` or a needed
        /// stage (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// tile-dota, crop-*: side of the square patches in pixels (unset: 1024 for tile-dota;
        /// 512 for crop-potsdam, the crops of RSP's Potsdam converter; 512 for crop-loveda).
        patch_size: Option<u32> = None,
        /// crop-*: pixels between the starts of neighbouring crops; the last crop of a row or
        /// column ends at the image border (unset: 384 for crop-potsdam, the stride of RVSA's
        /// sliding-window inference (RSP's converter cuts every 256); 512 for crop-loveda,
        /// non-overlapping).
        stride: Option<u32> = None,
        /// tile-dota: overlap between neighbouring patches in pixels.
        gap: u32 = 200,
        /// tile-dota: the splits (folders of the DOTA root) to tile.
        splits: Vec<String> = vec!["train".to_string(), "val".to_string()],
        /// crop-potsdam: which reference labels are cut: `full` (`*_label.tif`) or `eroded`
        /// (`*_label_noBoundary.tif`); the crops keep the variant's names (unset: full).
        /// rescore-potsdam: the labels the predictions are scored against (unset: full).
        labels: Option<PotsdamLabels> = None,
        /// rescore-*: the needed `evaluate` stage whose stored predictions (segmentation) or
        /// merged detections (detection) are scored.
        predictions: Option<String> = None,
        /// rescore-dota, rescore-dior-r: AP protocol (unset: devkit for DOTA, mmrotate for
        /// DIOR-R, as the evaluation).
        protocol: Option<String> as AP_PROTOCOLS = None,
        /// rescore-dota, rescore-dior-r: VOC07 11-point or VOC12 area AP (unset: voc07).
        ap_metric: Option<String> as AP_METRICS = None,
        /// rescore-dota, rescore-dior-r: IoU threshold of a true positive (unset: 0.5).
        iou: Option<f64> = None,
        /// rescore-dota: the DOTA release whose classes the evaluation scored (unset: v1.0,
        /// as the evaluation).
        version: Option<String> as DOTA_RELEASES = None,
        /// rescore-potsdam: the tiles scored, as the evaluation's `val_tiles` (unset: the 14
        /// standard test tiles).
        val_tiles: Option<Vec<String>> = None,
        /// rescore-potsdam: score clutter as a sixth class instead of ignoring it.
        clutter: bool = false,
        /// tile-dota: also write patches without objects (MMRotate's `save_empty`; the
        /// references drop them from training sets).
        keep_empty: bool = false,
    }
}

impl PrepareParams {
    /// Side of the patches of tile-dota and the crop-* ops: the stage's, else the op's default.
    pub fn patch_size(&self) -> u32 {
        let default = self.op.crop_defaults().map_or(1024, |(size, _)| size);
        self.patch_size.unwrap_or(default)
    }

    /// Stride of the crop-* ops: the stage's, else the op's default.
    pub fn stride(&self) -> u32 {
        let default = self.op.crop_defaults().map_or(0, |(_, stride)| stride);
        self.stride.unwrap_or(default)
    }

    /// The parameters with the op's defaults written out (`patch_size`, `stride`), so
    /// `stage.json` and the results show the values used.
    pub fn resolved(mut self) -> Self {
        if self.op.source_format().is_some() && !self.op.is_rescore() {
            self.patch_size = Some(self.patch_size());
        }
        if self.op.crop_defaults().is_some() {
            self.stride = Some(self.stride());
        }
        self
    }

    /// Checks what the types cannot; errors name the key and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        let defaults = Self::default();
        let synth_only = [
            ("images", self.images != defaults.images),
            ("size", self.size.is_some()),
            ("test_images", self.test_images > 0),
        ];
        let tile_only = [
            ("gap", self.gap != defaults.gap),
            ("splits", self.splits != defaults.splits),
            ("keep_empty", self.keep_empty != defaults.keep_empty),
        ];
        let seg_rescore_only = [
            ("val_tiles", self.val_tiles.is_some()),
            ("clutter", self.clutter),
        ];
        let det_rescore_only = [
            ("protocol", self.protocol.is_some()),
            ("ap_metric", self.ap_metric.is_some()),
            ("iou", self.iou.is_some()),
        ];
        if !self.op.is_rescore() {
            refuse_keys(self.op, &[("predictions", self.predictions.is_some())])?;
        }
        if self.op != PrepareOp::RescorePotsdam {
            refuse_keys(self.op, &seg_rescore_only)?;
        }
        if !matches!(self.op, PrepareOp::RescoreDota | PrepareOp::RescoreDiorR) {
            refuse_keys(self.op, &det_rescore_only)?;
        }
        if self.op != PrepareOp::RescoreDota {
            refuse_keys(self.op, &[("version", self.version.is_some())])?;
        }
        match self.op {
            PrepareOp::RescorePotsdam | PrepareOp::RescoreDota | PrepareOp::RescoreDiorR => {
                refuse_keys(self.op, &synth_only)?;
                refuse_keys(self.op, &tile_only)?;
                refuse_keys(
                    self.op,
                    &[
                        ("patch_size", self.patch_size.is_some()),
                        ("stride", self.stride.is_some()),
                    ],
                )?;
                if self.op != PrepareOp::RescorePotsdam {
                    refuse_keys(self.op, &[("labels", self.labels.is_some())])?;
                    crate::ensure_param!(
                        self.iou.is_none_or(|iou| iou > 0.0 && iou <= 1.0),
                        "iou",
                        "`iou` must be in (0, 1]"
                    );
                }
                crate::ensure_param!(self.predictions.is_some(), "predictions", "`predictions` is not set: name the needed `evaluate` stage whose predictions are scored");
            }
            PrepareOp::TileDota => {
                refuse_keys(self.op, &synth_only)?;
                refuse_keys(
                    self.op,
                    &[
                        ("stride", self.stride.is_some()),
                        ("labels", self.labels.is_some()),
                    ],
                )?;
                crate::ensure_param!(
                    self.gap < self.patch_size(),
                    "gap",
                    "`gap = {}` must be smaller than `patch_size = {}`",
                    self.gap,
                    self.patch_size()
                );
                crate::ensure_param!(
                    !self.splits.is_empty(),
                    "splits",
                    help = "list the DOTA folders to tile, e.g. [\"train\", \"val\"]",
                    "`splits` is empty"
                );
            }
            PrepareOp::CropPotsdam | PrepareOp::CropLoveda => {
                refuse_keys(self.op, &synth_only)?;
                if self.op == PrepareOp::CropLoveda {
                    refuse_keys(self.op, &[("labels", self.labels.is_some())])?;
                }
                refuse_keys(self.op, &tile_only)?;
                let (size, stride) = (self.patch_size(), self.stride());
                crate::ensure_param!(
                    size > 0,
                    "patch_size",
                    help = "set the crop side in pixels, e.g. `patch_size = 512`",
                    "`patch_size = 0`"
                );
                crate::ensure_param!(
                    stride > 0,
                    "stride",
                    help = format!(
                        "set the pixels between crop starts, e.g. `stride = {size}` (no overlap)"
                    ),
                    "`stride = 0`"
                );
                crate::ensure_param!(stride <= size, "stride", "`stride = {stride}` is larger than `patch_size = {size}`: the crops would skip \
                     the pixels between them; set `stride` to {size} or less");
            }
            _ => {
                let reader_only = [
                    ("dataset", self.dataset.is_some()),
                    ("labels", self.labels.is_some()),
                    ("patch_size", self.patch_size.is_some()),
                    ("stride", self.stride.is_some()),
                ];
                refuse_keys(self.op, &reader_only)?;
                refuse_keys(self.op, &tile_only)?;
                if !matches!(self.op, PrepareOp::SynthDota | PrepareOp::SynthLoveda) {
                    refuse_keys(self.op, &[("test_images", self.test_images > 0)])?;
                }
                crate::ensure_param!(
                    self.images > 0,
                    "images",
                    "`images = 0`: a synthetic dataset needs 1 image or more"
                );
            }
        }
        Ok(())
    }
}

/// An error naming the first key in `set` that does not apply to `op`.
fn refuse_keys(op: PrepareOp, set: &[(&str, bool)]) -> anyhow::Result<()> {
    match set.iter().find(|(_, is_set)| *is_set) {
        Some((key, _)) => Err(ParamError::new(
            *key,
            format!("`{key}` does not apply to `op = \"{}\"`", op.as_str()),
        )
        .help("remove it")
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Schema;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<PrepareParams, String> {
        PrepareParams::from_map(value.as_object().unwrap().clone()).map_err(|e| e.to_string())
    }

    #[test]
    fn every_spelling_parses_and_names_itself() {
        for spelling in PrepareOp::SPELLINGS {
            let mut params = parse(json!({ "op": spelling })).unwrap();
            if params.op.is_rescore() {
                params.predictions = Some("score".into());
            }
            assert_eq!(params.op.as_str(), *spelling);
            params.validate().unwrap();
        }
        assert!(parse(json!({ "op": "synth-coco" })).is_err());
        assert!(parse(json!({})).unwrap_err().contains("`op` is required"));
    }

    #[test]
    fn keys_of_the_other_ops_are_refused_by_name() {
        let tile = parse(json!({ "op": "tile-dota", "images": 4 })).unwrap();
        assert!(tile
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`images`"));
        let synth = parse(json!({ "op": "synth-dota", "gap": 100 })).unwrap();
        assert!(synth.validate().unwrap_err().to_string().contains("`gap`"));
        let overlap = parse(json!({ "op": "tile-dota", "patch_size": 64, "gap": 64 })).unwrap();
        assert!(overlap.validate().unwrap_err().to_string().contains("gap"));
    }

    fn refusal(value: serde_json::Value) -> String {
        parse(value).unwrap().validate().unwrap_err().to_string()
    }

    #[test]
    fn crop_ops_take_their_dataset_defaults_and_refuse_other_keys() {
        let potsdam = parse(json!({ "op": "crop-potsdam" })).unwrap().resolved();
        assert_eq!((potsdam.patch_size, potsdam.stride), (Some(512), Some(384)));
        let loveda = parse(json!({ "op": "crop-loveda" })).unwrap().resolved();
        assert_eq!((loveda.patch_size, loveda.stride), (Some(512), Some(512)));
        let tile = parse(json!({ "op": "tile-dota" })).unwrap().resolved();
        assert_eq!((tile.patch_size, tile.stride), (Some(1024), None));
        let synth = parse(json!({ "op": "synth-potsdam" })).unwrap().resolved();
        assert_eq!((synth.patch_size, synth.stride), (None, None));
        for op in [potsdam, loveda, tile, synth] {
            op.validate().unwrap();
        }

        assert!(
            refusal(json!({ "op": "crop-loveda", "gap": 100 })).contains("`gap` does not apply")
        );
        assert!(refusal(json!({ "op": "crop-potsdam", "images": 3 })).contains("`images`"));
        assert!(refusal(json!({ "op": "crop-potsdam", "splits": ["train"] })).contains("`splits`"));
        assert!(refusal(json!({ "op": "tile-dota", "stride": 100 })).contains("`stride`"));
        assert!(refusal(json!({ "op": "synth-loveda", "stride": 100 })).contains("`stride`"));
        assert!(refusal(json!({ "op": "synth-loveda", "patch_size": 64 })).contains("`patch_size`"));
    }

    #[test]
    fn crop_strides_that_skip_pixels_are_refused_with_the_fix() {
        let gap = refusal(json!({ "op": "crop-potsdam", "patch_size": 256 }));
        assert!(
            gap.contains("`stride = 384` is larger than `patch_size = 256`")
                && gap.contains("set `stride` to 256 or less"),
            "{gap}"
        );
        let zero = refusal(json!({ "op": "crop-loveda", "stride": 0 }));
        assert!(
            zero.contains("`stride = 0`") && zero.contains("stride = 512"),
            "{zero}"
        );
        let empty = refusal(json!({ "op": "crop-loveda", "patch_size": 0, "stride": 0 }));
        assert!(empty.contains("`patch_size = 0`"), "{empty}");
    }
}
