//! Synthetic datasets written in each dataset's real on-disk format, so the same readers and
//! pipelines run on them. Output depends only on the seed and the options (a SplitMix64
//! generator of our own drives every choice), and objects are clearly distinct per class so
//! that a small model can learn them.
//!
//! Every dataset holds `images` items; the last `max(1, images / 5)` (none when `images` < 2)
//! form the held-out split (`val`, DIOR-R `test`). `synth.json` in the output folder lists the
//! dataset, seed, size, class names and the ids of each split.

mod detection;
mod objects;
mod raster;
mod scenes;
mod segmentation;

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use crate::data::error::{write_file, DataError, DataResult};
use crate::data::formats::dior::DIOR_CLASSES;
use crate::data::formats::dota::DotaVersion;
use crate::data::formats::loveda::LOVEDA_CLASSES;
use crate::data::formats::potsdam::ISPRS_CLASSES;

/// The datasets `generate` can imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthDataset {
    /// DOTA v2.0 (`train|val/images/*.png`, `labelTxt/*.txt`), 18 classes.
    Dota,
    /// DIOR-R (`JPEGImages-*`, `Annotations/Oriented Bounding Boxes`, `ImageSets/Main`), 20 classes.
    DiorR,
    /// ISPRS Potsdam (`2_Ortho_RGB`, `4_Ortho_RGBIR`, `5_Labels_all` TIFF tiles), 6 classes.
    Potsdam,
    /// LoveDA (`Train|Val/Urban|Rural/images_png|masks_png`), 7 classes.
    Loveda,
    /// Million-AID (`train|test/<category path>/*.jpg`), scene folders.
    MillionAid,
}

impl SynthDataset {
    /// All datasets, in the order of the CLI's help.
    pub const ALL: [SynthDataset; 5] = [
        SynthDataset::Dota,
        SynthDataset::DiorR,
        SynthDataset::Potsdam,
        SynthDataset::Loveda,
        SynthDataset::MillionAid,
    ];

    /// The CLI name (`dota`, `dior-r`, `potsdam`, `loveda`, `millionaid`).
    pub fn name(self) -> &'static str {
        match self {
            SynthDataset::Dota => "dota",
            SynthDataset::DiorR => "dior-r",
            SynthDataset::Potsdam => "potsdam",
            SynthDataset::Loveda => "loveda",
            SynthDataset::MillionAid => "millionaid",
        }
    }

    /// The image side used when no size is given (the real datasets' tile sizes, Million-AID's typical 256).
    pub fn default_size(self) -> u32 {
        match self {
            SynthDataset::Dota | SynthDataset::Loveda | SynthDataset::Potsdam => 1024,
            SynthDataset::DiorR => 800,
            SynthDataset::MillionAid => 256,
        }
    }

    /// The class names written to the labels (scene categories for Million-AID).
    pub fn classes(self) -> Vec<String> {
        let names: Vec<&str> = match self {
            SynthDataset::Dota => DotaVersion::V2_0.classes().to_vec(),
            SynthDataset::DiorR => DIOR_CLASSES.to_vec(),
            SynthDataset::Potsdam => ISPRS_CLASSES.to_vec(),
            SynthDataset::Loveda => LOVEDA_CLASSES.to_vec(),
            SynthDataset::MillionAid => scenes::SCENES.iter().map(|s| s.path).collect(),
        };
        names.into_iter().map(String::from).collect()
    }
}

impl FromStr for SynthDataset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_lowercase().replace(['_', '-'], "");
        SynthDataset::ALL
            .into_iter()
            .find(|d| d.name().replace('-', "") == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = SynthDataset::ALL.iter().map(|d| d.name()).collect();
                format!(
                    "unknown dataset `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    /// Number of images (tiles, scenes) over all splits.
    pub images: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Image side in pixels; `None` = [`SynthDataset::default_size`].
    pub size: Option<u32>,
    /// Unlabelled images of the hidden-label test split, besides `images` (DOTA and LoveDA
    /// only: DOTA's `test-dev/images/`, LoveDA's `Test/`).
    pub test_images: usize,
}

/// The ids written to each split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitIds {
    /// Training ids (DIOR-R `trainval`).
    pub train: Vec<String>,
    /// Held-out ids (DIOR-R `test`, Million-AID `test`; for Potsdam the standard test tile
    /// ids, as its readers hold them out; else the last fifth).
    pub val: Vec<String>,
    /// Ids of the unlabelled test split (DOTA `test-dev`, LoveDA `Test`), when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
}

impl SplitIds {
    /// Records `id` in the held-out or the training split.
    fn push(&mut self, id: &str, held_out: bool) {
        let split = if held_out {
            &mut self.val
        } else {
            &mut self.train
        };
        split.push(id.to_string());
    }

    /// Records `id` (item `index` of `total`) in its split and returns `"train"` or `"val"`.
    fn assign(&mut self, index: usize, total: usize, id: &str) -> &'static str {
        let held_out = if total >= 2 { (total / 5).max(1) } else { 0 };
        let is_val = index + held_out >= total;
        self.push(id, is_val);
        if is_val {
            "val"
        } else {
            "train"
        }
    }
}

/// What `generate` wrote (also saved as `synth.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthSummary {
    /// Dataset name.
    pub dataset: String,
    /// Seed used.
    pub seed: u64,
    /// Image side in pixels.
    pub size: u32,
    /// Number of images.
    pub images: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Ids per split.
    pub splits: SplitIds,
}

/// Smallest image side accepted.
pub const MIN_SIZE: u32 = 32;

/// Writes a synthetic `dataset` under `out_dir` and returns (and saves) its summary.
pub fn generate(
    dataset: SynthDataset,
    out_dir: &Path,
    options: &SynthOptions,
) -> DataResult<SynthSummary> {
    let size = options.size.unwrap_or_else(|| dataset.default_size());
    if !(MIN_SIZE..=16384).contains(&size) {
        return Err(DataError::invalid(
            out_dir,
            format!("image size {size} is out of range: use {MIN_SIZE} to 16384 pixels"),
        ));
    }
    if options.test_images > 0 && !matches!(dataset, SynthDataset::Dota | SynthDataset::Loveda) {
        return Err(DataError::invalid(
            out_dir,
            format!(
                "{} has no hidden-label test split (its test labels are public): test images apply to dota and loveda; drop them",
                dataset.name()
            ),
        ));
    }
    if options.images == 0 {
        return Err(DataError::invalid(
            out_dir,
            "asked for 0 images: use --images 1 or more",
        ));
    }
    let splits = match dataset {
        SynthDataset::Dota => detection::write_dota(out_dir, options, size)?,
        SynthDataset::DiorR => detection::write_dior_r(out_dir, options, size)?,
        SynthDataset::Potsdam => segmentation::write_potsdam(out_dir, options, size)?,
        SynthDataset::Loveda => segmentation::write_loveda(out_dir, options, size)?,
        SynthDataset::MillionAid => scenes::write_millionaid(out_dir, options, size)?,
    };
    let summary = SynthSummary {
        dataset: dataset.name().to_string(),
        seed: options.seed,
        size,
        images: options.images,
        classes: dataset.classes(),
        splits,
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| DataError::codec(out_dir, e))?;
    write_file(&out_dir.join("synth.json"), format!("{json}\n").as_bytes())?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_parse() {
        for d in SynthDataset::ALL {
            assert_eq!(d.name().parse::<SynthDataset>(), Ok(d));
        }
        assert_eq!("DIOR_R".parse::<SynthDataset>(), Ok(SynthDataset::DiorR));
        assert!("imagenet".parse::<SynthDataset>().is_err());
    }

    #[test]
    fn held_out_split_sizes() {
        let mut ids = SplitIds::default();
        for i in 0..10 {
            ids.assign(i, 10, &i.to_string());
        }
        assert_eq!((ids.train.len(), ids.val.len()), (8, 2));
        let mut one = SplitIds::default();
        assert_eq!(one.assign(0, 1, "a"), "train");
    }
}
