//! 8-bit images as the normalised float planes the models take.

use super::mae_augment::{IMAGENET_MEAN, IMAGENET_STD};
use crate::data::image_io::Image;

/// `image` as ImageNet-normalised `[3, H, W]` f32 samples, channel-major: each value
/// `(v / 255 − mean) / std` in f32, gray repeated to three channels and extra bands dropped,
/// the same numbers as `train::images::standardize(&to_tensor(image))` computes.
pub fn normalized_planes(image: &Image) -> Vec<f32> {
    let channels = usize::from(image.channels);
    let plane = image.width as usize * image.height as usize;
    let mut out = Vec::with_capacity(3 * plane);
    for c in 0..3 {
        let source = if channels == 1 { 0 } else { c };
        let (mean, std) = (IMAGENET_MEAN[c] as f32, IMAGENET_STD[c] as f32);
        out.extend(
            image
                .data
                .iter()
                .skip(source)
                .step_by(channels)
                .map(|&v| (f32::from(v) / 255.0 - mean) / std),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_are_channel_major_and_gray_is_repeated() {
        let mut rgb = Image::new(2, 1, 3);
        rgb.data = vec![0, 128, 255, 255, 0, 128];
        let planes = normalized_planes(&rgb);
        assert_eq!(planes.len(), 6);
        let want =
            |v: f32, c: usize| (v / 255.0 - IMAGENET_MEAN[c] as f32) / IMAGENET_STD[c] as f32;
        assert_eq!(planes[0], want(0.0, 0));
        assert_eq!(planes[1], want(255.0, 0));
        assert_eq!(planes[2], want(128.0, 1));
        assert_eq!(planes[5], want(128.0, 2));
        let mut gray = Image::new(1, 1, 1);
        gray.data = vec![51];
        let planes = normalized_planes(&gray);
        assert_eq!(planes, (0..3).map(|c| want(51.0, c)).collect::<Vec<_>>());
    }
}
