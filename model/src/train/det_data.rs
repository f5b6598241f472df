//! Oriented-object samples from DOTA-format (`{train,val}/images`, `{train,val}/labelTxt`) or
//! DIOR-R folders, with random training crops and box-aware flips and quarter turns.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tch::Tensor;

use super::images::{standardize, to_tensor};
use super::rng::SplitMix64;
use crate::data::formats::dior::{self, DiorSplit};
use crate::data::formats::dota::{self, ClassCheck, DotaObject};
use crate::data::image_io::read_image;
use crate::data::tiling::{clip_objects, split_windows, CutPolicy, SplitOptions};
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

/// A random flip and quarter-turn combination for a square image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Mirror left–right.
    pub hflip: bool,
    /// Mirror top–bottom.
    pub vflip: bool,
    /// Quarter turns (counter-clockwise on screen), applied after the flips.
    pub quarter_turns: u8,
}

impl Augment {
    /// Draws flips (each with probability ½) and, when `rotate`, 0–3 quarter turns.
    pub fn draw(rng: &mut SplitMix64, flips: bool, rotate: bool) -> Self {
        Augment {
            hflip: flips && rng.below(2) == 1,
            vflip: flips && rng.below(2) == 1,
            quarter_turns: if rotate { rng.below(4) as u8 } else { 0 },
        }
    }

    /// The transformed `[C, S, S]` image.
    pub fn image(&self, image: &Tensor) -> Tensor {
        let mut t = image.shallow_clone();
        if self.hflip {
            t = t.flip([2]);
        }
        if self.vflip {
            t = t.flip([1]);
        }
        if self.quarter_turns > 0 {
            t = t.rot90(i64::from(self.quarter_turns), [1, 2]);
        }
        t
    }

    /// Where image point `p` of an `side`-pixel square goes.
    pub fn point(&self, p: [f64; 2], side: f64) -> [f64; 2] {
        let [mut x, mut y] = p;
        if self.hflip {
            x = side - x;
        }
        if self.vflip {
            y = side - y;
        }
        for _ in 0..self.quarter_turns {
            (x, y) = (y, side - x);
        }
        [x, y]
    }
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
/// when smaller), with its augmented objects; objects less than 70% inside are dropped.
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
    let windows = split_windows(image.width, image.height, &options);
    let window = windows
        .get(rng.below(windows.len().max(1) as u64) as usize)
        .with_context(|| format!("{}: empty image", sample.image.display()))?;
    let crop = image.crop_padded(
        i64::from(window.x),
        i64::from(window.y),
        cfg.size,
        cfg.size,
        0,
    );
    let objects: Vec<DotaObject> = sample
        .objects
        .iter()
        .map(|o| DotaObject {
            poly: o.poly,
            class: o.class.to_string(),
            difficult: u8::from(o.difficult),
        })
        .collect();
    let augment = Augment::draw(rng, cfg.flips, cfg.rotate);
    let side = f64::from(cfg.size);
    let mut targets = ImageTargets::default();
    for object in clip_objects(&objects, window, &options) {
        let poly = object.poly.map(|p| augment.point(p, side));
        if let Some(rbox) = RotatedBox::from_polygon(&poly).filter(|b| b.w >= 2.0 && b.h >= 2.0) {
            targets.boxes.push(rbox);
            targets
                .labels
                .push(object.class.parse().context("class index")?);
        }
    }
    Ok((augment.image(&standardize(&to_tensor(&crop))), targets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn boxes_follow_the_pixels_through_flips_and_turns() {
        let side = 8i64;
        for code in 0..16u8 {
            let augment = Augment {
                hflip: code & 1 == 1,
                vflip: code & 2 == 2,
                quarter_turns: code >> 2,
            };
            let image = Tensor::zeros([1, side, side], (Kind::Float, Device::Cpu));
            let _ = image.get(0).get(1).get(5).fill_(1.0);
            let moved = augment.image(&image);
            let [x, y] = augment.point([5.5, 1.5], side as f64);
            let value = moved
                .get(0)
                .get(y.floor() as i64)
                .get(x.floor() as i64)
                .double_value(&[]);
            assert_eq!(
                value, 1.0,
                "{augment:?} sent the pixel elsewhere than ({x}, {y})"
            );
        }
    }
}
