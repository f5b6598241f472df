//! Image sources for training: a dataset folder of images or procedurally generated scenes,
//! as normalised tensors `[chans, size, size]`.

use std::path::PathBuf;

use anyhow::Context;
use tch::{Device, Kind, Tensor};

use super::rng::{stream, SplitMix64};
use crate::data::image_io::{read_image, Image};

/// ImageNet channel means, as MAE normalises inputs.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Where training images come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Image files, read and resized on demand.
    Files(Vec<PathBuf>),
    /// `count` generated scenes of rectangles on gradients, determined by `seed`.
    Synthetic { count: usize, seed: u64 },
}

impl ImageSource {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            ImageSource::Files(paths) => paths.len(),
            ImageSource::Synthetic { count, .. } => *count,
        }
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `index` as a normalised `[3, size, size]` float tensor.
    pub fn get(&self, index: usize, size: i64) -> anyhow::Result<Tensor> {
        let image = match self {
            ImageSource::Files(paths) => {
                let path = &paths[index];
                read_image(path)
                    .with_context(|| format!("cannot read training image {}", path.display()))?
            }
            ImageSource::Synthetic { seed, .. } => synthetic_scene(*seed, index, size as u32),
        };
        Ok(normalize(&to_tensor(&image), size))
    }

    /// A batch `[n, 3, size, size]` of the given images.
    pub fn batch(&self, indices: &[usize], size: i64) -> anyhow::Result<Tensor> {
        let images = indices
            .iter()
            .map(|&i| self.get(i, size))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&images, 0))
    }
}

/// An 8-bit image as a `[3, H, W]` float tensor in `[0, 1]` (gray is repeated, extra bands
/// are dropped).
pub fn to_tensor(image: &Image) -> Tensor {
    let (h, w, c) = (
        image.height as i64,
        image.width as i64,
        image.channels as i64,
    );
    let t = Tensor::from_slice(&image.data)
        .reshape([h, w, c])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        / 255.0;
    match c {
        1 => t.repeat([3, 1, 1]),
        _ => t.narrow(0, 0, 3.min(c)),
    }
}

/// Resizes `[3, H, W]` to `size × size` (bilinear) and applies the ImageNet normalisation.
pub fn normalize(image: &Tensor, size: i64) -> Tensor {
    let (_, h, w) = image.size3().expect("image is [3, H, W]");
    let resized = if (h, w) == (size, size) {
        image.shallow_clone()
    } else {
        image
            .unsqueeze(0)
            .upsample_bilinear2d([size, size], false, None, None)
            .squeeze_dim(0)
    };
    standardize(&resized)
}

/// Applies the ImageNet normalisation to a `[3, H, W]` image in `[0, 1]`.
pub fn standardize(image: &Tensor) -> Tensor {
    let mean = Tensor::from_slice(&IMAGENET_MEAN)
        .to_kind(Kind::Float)
        .reshape([3, 1, 1]);
    let std = Tensor::from_slice(&IMAGENET_STD)
        .to_kind(Kind::Float)
        .reshape([3, 1, 1]);
    ((image.to_device(Device::Cpu) - mean) / std).to_kind(Kind::Float)
}

/// A generated scene: a colour gradient with three filled rectangles, fully determined by
/// `(seed, index)`.
pub fn synthetic_scene(seed: u64, index: usize, size: u32) -> Image {
    let mut rng = SplitMix64::new(seed, stream::SYNTHETIC, index as u64);
    let mut colour = || {
        [
            rng.below(256) as f64,
            rng.below(256) as f64,
            rng.below(256) as f64,
        ]
    };
    let (top, bottom) = (colour(), colour());
    let mut image = Image::new(size, size, 3);
    for y in 0..size {
        let t = y as f64 / size.max(1) as f64;
        for x in 0..size {
            let px = image.pixel_mut(x, y);
            for c in 0..3 {
                px[c] = (top[c] * (1.0 - t) + bottom[c] * t) as u8;
            }
        }
    }
    for _ in 0..3 {
        let fill = [
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ];
        let (x0, y0) = (rng.below(size as u64) as u32, rng.below(size as u64) as u32);
        let (w, h) = (
            1 + rng.below(size as u64 / 2) as u32,
            1 + rng.below(size as u64 / 2) as u32,
        );
        for y in y0..(y0 + h).min(size) {
            for x in x0..(x0 + w).min(size) {
                image.pixel_mut(x, y).copy_from_slice(&fill);
            }
        }
    }
    image
}
