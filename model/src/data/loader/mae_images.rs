//! MAE's per-sample work for the loader: read an image and apply [`MaeAugment`] with the
//! random stream of the sample's (seed, epoch, index).

use std::path::PathBuf;
use std::sync::Arc;

use super::mae_augment::MaeAugment;
use super::prefetch::Sample;
use crate::data::error::DataError;
use crate::data::image_io::read_image;
use crate::rng::SplitMix64;

/// Stream id of MAE's augmentation draws.
const AUGMENT_STREAM: u64 = 6;

/// The loader's produce function for MAE: sample → the augmented `[3, size, size]` image of
/// `paths[index]` (normalised, channel-major), its crop and flip drawn from the stream of
/// (`seed`, epoch, index); an error naming the file when it cannot be read.
pub fn mae_images(
    paths: Arc<[PathBuf]>,
    augment: MaeAugment,
    seed: u64,
) -> impl Fn(Sample) -> Result<Vec<f32>, DataError> + Send + Sync + 'static {
    move |Sample { index, epoch }| {
        let image = read_image(&paths[index])?;
        let mut rng = SplitMix64::new(seed, AUGMENT_STREAM, (epoch << 40) ^ index as u64);
        Ok(augment.apply(&image, &mut rng))
    }
}
