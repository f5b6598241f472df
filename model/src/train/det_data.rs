//! Oriented-object samples from DOTA-format (`{train,val}/images`, `{train,val}/labelTxt`) or
//! DIOR-R folders, and the training crop of a sample (see [`crate::data::transforms`]).

use anyhow::Context;
use tch::Tensor;

use super::images::{standardize, to_tensor};
use super::rng::SplitMix64;
use crate::data::formats::dota::DotaObject;
use crate::data::image_io::read_image;
use crate::data::tiling::{CutPolicy, SplitOptions};
use crate::data::transforms::crop::random_split_window;
use crate::data::transforms::dihedral::Dihedral;
use crate::geometry::RotatedBox;
use crate::nn::oriented_rcnn::ImageTargets;

pub use crate::data::det_samples::{ground_truths, list_samples, DetObject, DetSample, Part};

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
