//! Segmentation samples from LoveDA or ISPRS Potsdam folders, as (image, labels) pairs, with
//! random crops for training (see [`crate::data::transforms`]), and the loader work that
//! reads and crops a rank's samples on the loader's threads.

use std::sync::Arc;

use tch::{Kind, Tensor};

use super::replicas::ShardSample;
use super::rng::SplitMix64;
use crate::data::image_io::Image;
use crate::data::loader::{images_tensor, normalized_planes};
use crate::data::transforms::dihedral::Dihedral;
use crate::data::transforms::seg_augment::SegAugment;

pub use crate::data::seg_samples::{list_samples, Part, SegSample, IGNORE_INDEX};

/// A training sample as `augment` says (rescaled, a crop of `augment.crop` pixels padded with
/// `IGNORE_INDEX` labels where the image is smaller, photometric distortion), flipped
/// horizontally half the time: the `crop × crop` image and one-channel labels. Every draw
/// comes from `rng`.
pub fn random_crop(
    image: &Image,
    labels: &[u8],
    augment: &SegAugment,
    rng: &mut SplitMix64,
) -> (Image, Image) {
    let label_image = Image {
        width: image.width,
        height: image.height,
        channels: 1,
        data: labels.to_vec(),
    };
    let (crop, label_crop) = augment.apply(image, &label_image, rng);
    let flip = Dihedral {
        hflip: rng.below(2) == 1,
        ..Dihedral::default()
    };
    (flip.image(&crop), flip.image(&label_crop))
}

/// A training crop as the loader's threads make it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegCrop {
    /// `[3, S, S]` ImageNet-normalised samples, channel-major ([`normalized_planes`]).
    pub pixels: Vec<f32>,
    /// `[S, S]` labels.
    pub labels: Vec<u8>,
}

/// The loader's produce function for segmentation: a sample of `samples` → its image and
/// labels read, [`random_crop`]ped with the sample's own augmentation stream, normalised.
pub fn training_crops(
    samples: Arc<[SegSample]>,
    augment: SegAugment,
) -> impl Fn(ShardSample) -> anyhow::Result<SegCrop> + Send + Sync + 'static {
    move |mut sample| {
        let (image, labels) = samples[sample.index].load()?;
        let (crop, label_crop) = random_crop(&image, &labels, &augment, &mut sample.augment);
        Ok(SegCrop {
            pixels: normalized_planes(&crop),
            labels: label_crop.data,
        })
    }
}

/// The `[n, 3, S, S]` images and `[n, S, S]` int64 labels of `crops`.
pub fn crop_batch(crops: &[SegCrop], side: u32) -> (Tensor, Tensor) {
    let pixels: Vec<&[f32]> = crops.iter().map(|c| c.pixels.as_slice()).collect();
    let labels: Vec<u8> = crops
        .iter()
        .flat_map(|c| c.labels.iter().copied())
        .collect();
    let side = i64::from(side);
    let labels = Tensor::from_slice(&labels)
        .view([crops.len() as i64, side, side])
        .to_kind(Kind::Int64);
    (images_tensor(&pixels, side as u32), labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{generate, SynthDataset, SynthOptions};
    use crate::params::data::{SegDataParams, SegFormat};

    #[test]
    fn potsdam_splits_by_tile_and_ignores_clutter() {
        let dir = tempfile::tempdir().unwrap();
        generate(
            SynthDataset::Potsdam,
            dir.path(),
            &SynthOptions {
                images: 5,
                seed: 2,
                size: Some(64),
                test_images: 0,
            },
        )
        .unwrap();
        let params = SegDataParams {
            labels: Default::default(),
            name: "potsdam".into(),
            format: SegFormat::Potsdam,
            val_tiles: None,
            clutter: false,
            trainval: false,
        };
        let train = list_samples(dir.path(), &params, Part::Train).unwrap();
        let val = list_samples(dir.path(), &params, Part::Val).unwrap();
        let ids: Vec<&str> = val.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["2_13", "2_14"]);
        assert_eq!(train.len(), 3);
        let (image, labels) = train[0].load().unwrap();
        assert_eq!(labels.len(), (image.width * image.height) as usize);
        assert!(labels.iter().all(|&l| l < 5 || l == IGNORE_INDEX));
    }

    #[test]
    fn crops_pad_small_images_with_ignored_labels() {
        let image = Image {
            width: 4,
            height: 3,
            channels: 3,
            data: vec![200; 36],
        };
        let labels = vec![1u8; 12];
        let mut rng = SplitMix64::new(0, 0, 0);
        let (img, lab) = random_crop(
            &image,
            &labels,
            &SegAugment::crop_only(8, IGNORE_INDEX),
            &mut rng,
        );
        assert_eq!((img.width, img.height, img.channels), (8, 8, 3));
        assert_eq!((lab.width, lab.height, lab.channels), (8, 8, 1));
        assert_eq!(lab.data.iter().filter(|&&l| l == 1).count(), 12);
        assert_eq!(
            lab.data.iter().filter(|&&l| l == IGNORE_INDEX).count(),
            64 - 12
        );
    }
}
