//! Training images as normalised tensors `[3, size, size]`: a folder of image files, the
//! conversion of 8-bit images and the ImageNet normalisation.

use std::path::PathBuf;

use anyhow::Context;
use tch::{Device, Kind, Tensor};

use crate::data::image_io::{read_image, Image};

pub use crate::data::loader::{IMAGENET_MEAN, IMAGENET_STD};

/// Image files, read and resized on demand.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The files, in a fixed order.
    pub paths: Vec<PathBuf>,
}

impl ImageFolder {
    /// Image `index` as a normalised `[3, size, size]` float tensor.
    pub fn get(&self, index: usize, size: i64) -> anyhow::Result<Tensor> {
        let path = &self.paths[index];
        let image = read_image(path)
            .with_context(|| format!("cannot read training image {}", path.display()))?;
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
