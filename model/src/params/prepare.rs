//! Parameters of a `prepare` stage: a dataset written by `rsfm prepare` (synthesised or tiled).

use serde::{Deserialize, Serialize};

use crate::data::synth::SynthDataset;

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
    ];

    /// The dataset a `synth-*` op imitates; `None` for ops that read a dataset.
    pub fn synth_dataset(self) -> Option<SynthDataset> {
        match self {
            PrepareOp::SynthDota => Some(SynthDataset::Dota),
            PrepareOp::SynthDiorR => Some(SynthDataset::DiorR),
            PrepareOp::SynthPotsdam => Some(SynthDataset::Potsdam),
            PrepareOp::SynthLoveda => Some(SynthDataset::Loveda),
            PrepareOp::SynthMillionaid => Some(SynthDataset::MillionAid),
            PrepareOp::TileDota => None,
        }
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
        /// format, `tile-dota` the patches of a DOTA root.
        op: PrepareOp,
        /// synth-*: number of images over both splits (the last fifth is held out).
        images: usize = 10,
        /// synth-*: image side in pixels (unset: the dataset's usual tile size).
        size: Option<u32> = None,
        /// tile-dota: the dataset to tile, a name in the stage's `datasets` or a needed
        /// stage (unset: the only entry of `datasets`).
        dataset: Option<String> = None,
        /// tile-dota: patch side in pixels.
        patch_size: u32 = 1024,
        /// tile-dota: overlap between neighbouring patches in pixels.
        gap: u32 = 200,
        /// tile-dota: the splits (folders of the DOTA root) to tile.
        splits: Vec<String> = vec!["train".to_string(), "val".to_string()],
    }
}

impl PrepareParams {
    /// Checks what the types cannot; errors name the key and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        let defaults = Self::default();
        match self.op {
            PrepareOp::TileDota => {
                let synth_only = [
                    ("images", self.images != defaults.images),
                    ("size", self.size.is_some()),
                ];
                refuse_keys(self.op, &synth_only)?;
                anyhow::ensure!(
                    self.gap < self.patch_size,
                    "`gap = {}` must be smaller than `patch_size = {}`",
                    self.gap,
                    self.patch_size
                );
                anyhow::ensure!(
                    !self.splits.is_empty(),
                    "`splits` is empty: list the DOTA folders to tile, e.g. [\"train\", \"val\"]"
                );
            }
            _ => {
                let tile_only = [
                    ("dataset", self.dataset.is_some()),
                    ("patch_size", self.patch_size != defaults.patch_size),
                    ("gap", self.gap != defaults.gap),
                    ("splits", self.splits != defaults.splits),
                ];
                refuse_keys(self.op, &tile_only)?;
                anyhow::ensure!(
                    self.images > 0,
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
        Some((key, _)) => anyhow::bail!(
            "`{key}` does not apply to `op = \"{}\"`: remove it",
            op.as_str()
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Schema;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<PrepareParams, String> {
        PrepareParams::from_map(value.as_object().unwrap().clone())
    }

    #[test]
    fn every_spelling_parses_and_names_itself() {
        for spelling in PrepareOp::SPELLINGS {
            let params = parse(json!({ "op": spelling })).unwrap();
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
}
