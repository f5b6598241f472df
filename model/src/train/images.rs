//! Training images as normalised tensors `[3, size, size]`: the conversion of 8-bit images
//! and the ImageNet normalisation.

use tch::{Device, Kind, Tensor};

use crate::data::image_io::Image;

pub use crate::data::loader::{IMAGENET_MEAN, IMAGENET_STD};

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
