//! The training image loader: decoding and MAE's augmentation on a pool of threads with a
//! bounded prefetch queue, deterministic per (seed, epoch, index) whatever the thread count.

mod mae_augment;
mod prefetch;
mod resample;

pub use mae_augment::{MaeAugment, IMAGENET_MEAN, IMAGENET_STD};
pub use prefetch::{Batch, BatchPlan, Loader, LoaderConfig, Sample};
pub use resample::{resize_box, CropBox};

#[cfg(feature = "torch")]
impl Batch {
    /// The batch as a `[n, 3, size, size]` float tensor on the CPU, in pinned memory when CUDA
    /// is present (so the copy to the GPU can run asynchronously).
    pub fn to_tensor(&self) -> tch::Tensor {
        let side = i64::from(self.size);
        let t =
            tch::Tensor::from_slice(&self.pixels).view([self.indices.len() as i64, 3, side, side]);
        if tch::Cuda::is_available() {
            t.pin_memory(tch::Device::Cuda(0))
        } else {
            t
        }
    }
}
