//! The training loader: one pool of threads with a bounded prefetch queue for every training
//! stage, generic over the per-sample work (MAE's decoding and augmentation here; the
//! fine-tuning stages' crops in `train`), deterministic per sample whatever the thread count.

mod mae_augment;
mod mae_images;
mod planes;
mod prefetch;
mod resample;

pub use mae_augment::{MaeAugment, IMAGENET_MEAN, IMAGENET_STD};
pub use mae_images::mae_images;
pub use planes::normalized_planes;
pub use prefetch::{Batch, BatchPlan, Loader, LoaderConfig, Sample};
pub use resample::{resize_box, CropBox};

/// `[n, 3, side, side]` float tensor of `images` (each `3 * side * side` normalised samples,
/// as [`mae_images`] and [`normalized_planes`] give them) on the CPU, in pinned memory when
/// CUDA is present (so the copy to the GPU can run asynchronously).
#[cfg(feature = "torch")]
pub fn images_tensor(images: &[&[f32]], side: u32) -> tch::Tensor {
    let side = i64::from(side);
    let t = tch::Tensor::from_slice(&images.concat()).view([images.len() as i64, 3, side, side]);
    if tch::Cuda::is_available() {
        t.pin_memory(tch::Device::Cuda(0))
    } else {
        t
    }
}
