//! Oriented-object samples from DOTA-format (`{train,val}/images`, `{train,val}/labelTxt`) or
//! DIOR-R folders, and the training crop of a sample (see [`crate::data::transforms`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use tch::Tensor;

use super::images::{standardize, to_tensor};
use super::rng::SplitMix64;
use crate::data::formats::dior::{self, DiorSplit};
use crate::data::formats::dota::{self, ClassCheck, DotaObject};
use crate::data::image_io::read_image;
use crate::data::tiling::{CutPolicy, SplitOptions};
use crate::data::transforms::crop::random_split_window;
use crate::data::transforms::dihedral::Dihedral;
use crate::geometry::{Quad, RotatedBox};
use crate::metrics::detection::GroundTruth;
use crate::nn::oriented_rcnn::ImageTargets;
use crate::params::data::{DetDataParams, DetFormat};

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Training images.
    Train,
    /// Held-out images.
    Val,
}

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct DetObject {
    /// Corner polygon.
    pub poly: Quad,
    /// Class index.
    pub class: usize,
    /// The annotation's difficult flag.
    pub difficult: bool,
}

/// One image and its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct DetSample {
    /// Image id (file stem).
    pub id: String,
    /// Image file.
    pub image: PathBuf,
    /// Objects.
    pub objects: Vec<DetObject>,
}

/// The samples of `part` of the dataset at `root`.
pub fn list_samples(
    root: &Path,
    params: &DetDataParams,
    part: Part,
) -> anyhow::Result<Vec<DetSample>> {
    let names = params.class_names()?;
    let index = |class: &str| names.iter().position(|n| n == class);
    let samples = match params.format {
        DetFormat::Dota => {
            let dir = root.join(match part {
                Part::Train => "train",
                Part::Val => "val",
            });
            let version = params.dota_version()?;
            dota::read_split(
                &dir.join("images"),
                &dir.join("labelTxt"),
                ClassCheck::Version(version),
            )?
            .into_iter()
            .map(|s| DetSample {
                id: s.id,
                image: s.image,
                objects: s
                    .label
                    .objects
                    .iter()
                    .filter_map(|o| {
                        index(&o.class).map(|class| DetObject {
                            poly: o.poly,
                            class,
                            difficult: o.difficult != 0,
                        })
                    })
                    .collect(),
            })
            .collect::<Vec<_>>()
        }
        DetFormat::DiorR => {
            let split = match part {
                Part::Train => DiorSplit::Trainval,
                Part::Val => DiorSplit::Test,
            };
            dior::read_split(root, split)?
                .into_iter()
                .map(|s| DetSample {
                    id: s.id,
                    image: s.image,
                    objects: s
                        .annotation
                        .objects
                        .iter()
                        .filter_map(|o| {
                            dior::dior_class_index(&o.class).map(|class| DetObject {
                                poly: o.geometry.polygon(),
                                class,
                                difficult: o.difficult,
                            })
                        })
                        .collect(),
                })
                .collect()
        }
    };
    anyhow::ensure!(
        !samples.is_empty(),
        "{}: no images found for this part of the dataset",
        root.display()
    );
    Ok(samples)
}

/// The ground truth of `samples` for [`crate::metrics::detection::evaluate`].
pub fn ground_truths(samples: &[DetSample], class_names: &[String]) -> Vec<GroundTruth> {
    samples
        .iter()
        .flat_map(|s| {
            s.objects.iter().map(|o| GroundTruth {
                image: s.id.clone(),
                class: class_names[o.class].clone(),
                poly: o.poly,
                difficult: o.difficult,
            })
        })
        .collect()
}

/// Training settings of a crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropSettings {
    /// Side of the crop (the model's input).
    pub size: u32,
    /// Random flips.
    pub flips: bool,
    /// Random quarter turns.
    pub rotate: bool,
}

/// A standardised `[3, S, S]` crop of a random DOTA split window of the image (padded with 0
/// when smaller), flipped and turned at random, with its objects moved along; objects less
/// than 70% inside are dropped. Every draw comes from `rng`.
pub fn training_crop(
    sample: &DetSample,
    cfg: &CropSettings,
    rng: &mut SplitMix64,
) -> anyhow::Result<(Tensor, ImageTargets)> {
    let image = read_image(&sample.image)?;
    let options = SplitOptions {
        patch_size: cfg.size,
        gap: cfg.size / 5,
        below_threshold: CutPolicy::Drop,
        ..SplitOptions::default()
    };
    let objects: Vec<DotaObject> = sample
        .objects
        .iter()
        .map(|o| DotaObject {
            poly: o.poly,
            class: o.class.to_string(),
            difficult: u8::from(o.difficult),
        })
        .collect();
    let (crop, inside) = random_split_window(&image, &objects, &options, rng);
    let turn = Dihedral::draw(rng, cfg.flips, cfg.rotate);
    let side = f64::from(cfg.size);
    let mut targets = ImageTargets::default();
    for object in inside {
        let poly = turn.quad(&object.poly, side);
        if let Some(rbox) = RotatedBox::from_polygon(&poly).filter(|b| b.w >= 2.0 && b.h >= 2.0) {
            targets.boxes.push(rbox);
            targets
                .labels
                .push(object.class.parse().context("class index")?);
        }
    }
    Ok((standardize(&to_tensor(&turn.image(&crop))), targets))
}
