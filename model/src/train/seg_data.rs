//! Segmentation samples from LoveDA or ISPRS Potsdam folders, as (image, labels) pairs, with
//! random crops for training (see [`crate::data::transforms`]).

use tch::{Kind, Tensor};

use super::images::{normalize, to_tensor};
use super::rng::SplitMix64;
use crate::data::image_io::Image;
use crate::data::transforms::dihedral::Dihedral;
use crate::data::transforms::seg_augment::SegAugment;

pub use crate::data::seg_samples::{list_samples, Part, SegSample, IGNORE_INDEX};

/// A training sample as `augment` says (rescaled, a crop of `augment.crop` pixels padded with
/// `IGNORE_INDEX` labels where the image is smaller, photometric distortion), flipped
/// horizontally half the time: normalised `[3, s, s]` image and `[s, s]` int64 labels. Every
/// draw comes from `rng`.
pub fn random_crop(
    image: &Image,
    labels: &[u8],
    augment: &SegAugment,
    rng: &mut SplitMix64,
) -> (Tensor, Tensor) {
    let size = augment.crop;
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
    let img = normalize(&to_tensor(&flip.image(&crop)), size as i64);
    let lab = Tensor::from_slice(&flip.image(&label_crop).data)
        .reshape([size as i64, size as i64])
        .to_kind(Kind::Int64);
    (img, lab)
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
        assert_eq!(img.size(), vec![3, 8, 8]);
        let lab = Vec::<i64>::try_from(lab.flatten(0, -1)).unwrap();
        assert_eq!(lab.iter().filter(|&&l| l == 1).count(), 12);
        assert_eq!(
            lab.iter()
                .filter(|&&l| l == i64::from(IGNORE_INDEX))
                .count(),
            64 - 12
        );
    }
}
