//! The labelled samples of a segmentation dataset (LoveDA or ISPRS Potsdam) on disk, listed
//! per part (training or held-out) and read as (image, labels) pairs. Pure Rust: training,
//! evaluation and `rescore-potsdam` read them alike.

use std::path::{Path, PathBuf};

use crate::data::formats::{loveda, potsdam};
use crate::data::image_io::Image;
use crate::params::data::{SegDataParams, SegFormat};

/// Label of pixels that count neither in the loss nor in the metrics.
pub const IGNORE_INDEX: u8 = 255;

/// The folder of a segmentation evaluation's output holding each scored image's predicted
/// classes as `<id>.png` (single-channel, 8-bit).
pub const PREDICTIONS_DIR: &str = "predictions";

/// Training or evaluation half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// What the model learns from.
    Train,
    /// What it is scored on.
    Val,
    /// Both together: what a model whose test images only an evaluation server scores learns
    /// from (DOTA `train/` + `val/`, LoveDA `Train/` + `Val/`).
    TrainVal,
}

impl Part {
    /// The labelled halves this part is made of.
    pub fn halves(self) -> &'static [Part] {
        match self {
            Part::Train => &[Part::Train],
            Part::Val => &[Part::Val],
            Part::TrainVal => &[Part::Train, Part::Val],
        }
    }
}

/// The refusal of `trainval` for a layout whose held-out part is its public test split.
pub fn trainval_refused(format: &str) -> anyhow::Error {
    crate::params::ParamError::new(
        "trainval",
        format!("`trainval = true` trains on train and val together, for datasets whose test labels only an evaluation server holds (dota, loveda); {format} scores its public test split here"),
    )
    .help("remove `trainval`")
    .into()
}

/// One labelled image on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegSample {
    /// Short id for logs.
    pub id: String,
    image: PathBuf,
    labels: PathBuf,
    format: SegFormat,
    /// Potsdam: clutter kept as class 5 rather than ignored.
    clutter: bool,
}

impl SegSample {
    /// Reads the image and its labels (`IGNORE_INDEX` where not scored).
    pub fn load(&self) -> anyhow::Result<(Image, Vec<u8>)> {
        let image = crate::data::image_io::read_image(&self.image)?;
        let (width, height, labels) = self.load_labels()?;
        anyhow::ensure!(
            (width, height) == (image.width, image.height),
            "{}: labels of another size than the image",
            self.labels.display()
        );
        Ok((image, labels))
    }

    /// Reads its labels alone, as `(width, height, labels)`: LoveDA's mask, or Potsdam's
    /// labels with clutter as `IGNORE_INDEX` unless the dataset parameters score it.
    pub fn load_labels(&self) -> anyhow::Result<(u32, u32, Vec<u8>)> {
        match self.format {
            SegFormat::Loveda => Ok(loveda::read_mask(&self.labels)?),
            SegFormat::Potsdam => {
                let (width, height, mut labels) = potsdam::read_label(&self.labels)?;
                let scored = if self.clutter { 6 } else { 5 };
                for l in &mut labels {
                    if *l >= scored {
                        *l = IGNORE_INDEX;
                    }
                }
                Ok((width, height, labels))
            }
        }
    }
}

/// Lists the labelled samples of one part of the dataset at `root`.
pub fn list_samples(
    root: &Path,
    params: &SegDataParams,
    part: Part,
) -> anyhow::Result<Vec<SegSample>> {
    let samples: Vec<SegSample> = match params.format {
        SegFormat::Loveda => {
            let mut samples = Vec::new();
            for half in part.halves() {
                let split = if *half == Part::Train {
                    loveda::LovedaSplit::Train
                } else {
                    loveda::LovedaSplit::Val
                };
                samples.extend(
                    loveda::list_split(root, split)?
                        .into_iter()
                        .filter_map(|s| {
                            let labels = s.mask?;
                            Some(SegSample {
                                id: s.id,
                                image: s.image,
                                labels,
                                format: SegFormat::Loveda,
                                clutter: false,
                            })
                        }),
                );
            }
            samples
        }
        SegFormat::Potsdam if part == Part::TrainVal => return Err(trainval_refused("potsdam")),
        SegFormat::Potsdam => {
            let held_out = params.val_tiles.as_deref();
            potsdam::find_potsdam_tiles(root, potsdam::PotsdamBands::Rgb, params.labels)?
                .into_iter()
                .filter(|t| potsdam::is_held_out(&t.id, held_out) == (part == Part::Val))
                .filter_map(|t| {
                    let labels = t.label?;
                    Some(SegSample {
                        id: t.id,
                        image: t.image,
                        labels,
                        format: SegFormat::Potsdam,
                        clutter: params.clutter,
                    })
                })
                .collect()
        }
    };
    let hint = match (params.format, params.labels) {
        (SegFormat::Potsdam, labels) => format!(
            " (looked for *_{}.tif labels: `labels` picks full or eroded, and must match what the dataset or its crop stage holds)",
            labels.suffix()
        ),
        _ => String::new(),
    };
    anyhow::ensure!(
        !samples.is_empty(),
        "{}: no labelled {:?} samples in this {:?} dataset{hint}",
        root.display(),
        part,
        params.format
    );
    Ok(samples)
}
