//! Oriented-object samples from DOTA-format (`{train,val}/images`, `{train,val}/labelTxt`) or
//! DIOR-R folders, the training crop of a sample (see [`crate::data::transforms`]), and the
//! loader work that makes a rank's crops on the loader's threads.

use std::sync::Arc;

use anyhow::Context;
use tch::Tensor;

use super::replicas::ShardSample;
use super::rng::SplitMix64;
use crate::data::formats::dota::DotaObject;
use crate::data::image_io::{read_image, Image};
use crate::data::loader::{images_tensor, normalized_planes};
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

/// A training crop and its objects: the image as normalised planes on the loader's threads.
#[derive(Debug, Clone, PartialEq)]
pub struct DetCrop {
    /// `[3, S, S]` ImageNet-normalised samples, channel-major
    /// ([`normalized_planes`]).
    pub pixels: Vec<f32>,
    /// The objects in crop coordinates.
    pub targets: ImageTargets,
}

/// An `S × S` crop of a random DOTA split window of the image (padded with 0 when smaller),
/// flipped and turned at random, with its objects moved along; objects less than 70% inside
/// are dropped. Every draw comes from `rng`.
pub fn training_crop(
    sample: &DetSample,
    cfg: &CropSettings,
    rng: &mut SplitMix64,
) -> anyhow::Result<(Image, ImageTargets)> {
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
    Ok((turn.image(&crop), targets))
}

/// The loader's produce function for detection: a sample of `samples` → its
/// [`training_crop`] with the sample's own augmentation stream, normalised.
pub fn training_crops(
    samples: Arc<[DetSample]>,
    cfg: CropSettings,
) -> impl Fn(ShardSample) -> anyhow::Result<DetCrop> + Send + Sync + 'static {
    move |mut sample| {
        let (image, targets) = training_crop(&samples[sample.index], &cfg, &mut sample.augment)?;
        Ok(DetCrop {
            pixels: normalized_planes(&image),
            targets,
        })
    }
}

/// The `[n, 3, S, S]` images and the targets of `crops`.
pub fn crop_batch(crops: &[DetCrop], side: u32) -> (Tensor, Vec<ImageTargets>) {
    let pixels: Vec<&[f32]> = crops.iter().map(|c| c.pixels.as_slice()).collect();
    let targets = crops.iter().map(|c| c.targets.clone()).collect();
    (images_tensor(&pixels, side), targets)
}
