//! Random training crops: a square at a uniformly random place of an image and its label
//! map, or a random DOTA split window of an image with the objects it holds.

use crate::data::formats::dota::DotaObject;
use crate::data::image_io::Image;
use crate::data::tiling::{clip_objects, split_windows, SplitOptions};
use crate::rng::SplitMix64;

/// The same `size × size` window of `image` and of its one-channel `labels`, at a uniformly
/// random place (at 0 along a side shorter than `size`, padded there with 0 in the image and
/// `label_fill` in the labels).
pub fn random_crop_with_labels(
    image: &Image,
    labels: &Image,
    size: u32,
    label_fill: u8,
    rng: &mut SplitMix64,
) -> (Image, Image) {
    assert_eq!(
        (image.width, image.height),
        (labels.width, labels.height),
        "image and labels differ in size"
    );
    let x = rng.below(u64::from(image.width.saturating_sub(size)) + 1) as i64;
    let y = rng.below(u64::from(image.height.saturating_sub(size)) + 1) as i64;
    (
        image.crop_padded(x, y, size, size, 0),
        labels.crop_padded(x, y, size, size, label_fill),
    )
}

/// One of the DOTA split windows of `image` (`options.patch_size` square, padded with
/// `options.pad_value`), chosen uniformly, with `objects` clipped to it in window
/// coordinates by the splitter's rules.
pub fn random_split_window(
    image: &Image,
    objects: &[DotaObject],
    options: &SplitOptions,
    rng: &mut SplitMix64,
) -> (Image, Vec<DotaObject>) {
    // The splitter gives every image at least one window.
    let windows = split_windows(image.width, image.height, options);
    let window = &windows[rng.index_below(windows.len())];
    let size = options.patch_size;
    let crop = image.crop_padded(
        i64::from(window.x),
        i64::from(window.y),
        size,
        size,
        options.pad_value,
    );
    (crop, clip_objects(objects, window, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tiling::CutPolicy;

    #[test]
    fn crops_pad_small_images_and_keep_image_and_labels_aligned() {
        let image = Image {
            width: 4,
            height: 3,
            channels: 1,
            data: (0..12).collect(),
        };
        let labels = Image {
            data: (100..112).collect(),
            ..image.clone()
        };
        let mut rng = SplitMix64::new(0, 0, 0);
        let (img, lab) = random_crop_with_labels(&image, &labels, 8, 255, &mut rng);
        assert_eq!((img.width, img.height, lab.width, lab.height), (8, 8, 8, 8));
        assert_eq!(lab.data.iter().filter(|&&l| l == 255).count(), 64 - 12);
        for (i, l) in img.data.iter().zip(&lab.data) {
            if *l != 255 {
                assert_eq!(*l, i + 100, "labels moved apart from their pixels");
            }
        }
        let big = Image {
            width: 20,
            height: 20,
            channels: 1,
            data: (0..400).map(|v| (v % 251) as u8).collect(),
        };
        let origins: std::collections::BTreeSet<u8> = (0..30)
            .map(|_| random_crop_with_labels(&big, &big, 4, 0, &mut rng).0.data[0])
            .collect();
        assert!(origins.len() > 5, "crops do not move: {origins:?}");
    }

    #[test]
    fn split_windows_carry_their_objects_in_window_coordinates() {
        let image = Image::new(300, 100, 3);
        let object = DotaObject {
            poly: [[210.0, 10.0], [230.0, 10.0], [230.0, 30.0], [210.0, 30.0]],
            class: "plane".into(),
            difficult: 0,
        };
        let options = SplitOptions {
            patch_size: 100,
            gap: 0,
            below_threshold: CutPolicy::Drop,
            ..SplitOptions::default()
        };
        let mut rng = SplitMix64::new(4, 5, 6);
        let mut seen = 0;
        for _ in 0..40 {
            let (crop, objects) =
                random_split_window(&image, std::slice::from_ref(&object), &options, &mut rng);
            assert_eq!((crop.width, crop.height), (100, 100));
            if let Some(o) = objects.first() {
                assert_eq!(o.poly[0], [10.0, 10.0]);
                seen += 1;
            }
        }
        assert!(
            (5..40).contains(&seen),
            "the window holding the object came {seen} times"
        );
    }
}
