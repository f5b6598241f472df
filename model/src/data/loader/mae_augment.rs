//! MAE's pretraining augmentation, as its `main_pretrain.py` composes it with torchvision:
//! `RandomResizedCrop(size, scale=(0.2, 1.0), interpolation=bicubic)`,
//! `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(ImageNet mean, std)`.

use super::resample::{resize_box, CropBox};
use crate::data::image_io::Image;
use crate::rng::SplitMix64;

/// ImageNet channel means, as MAE normalises inputs.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// The settings of the augmentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaeAugment {
    /// Output side in pixels.
    pub size: u32,
    /// Range of the crop's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip.
    pub flip: f64,
}

impl MaeAugment {
    /// MAE's settings for `size × size` outputs.
    pub fn new(size: u32) -> Self {
        MaeAugment {
            size,
            scale: (0.2, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: 0.5,
        }
    }

    /// The crop torchvision's `RandomResizedCrop.get_params` would draw: ten tries at a box
    /// of random area and aspect ratio inside the image, else the largest centred box of an
    /// allowed ratio.
    pub fn crop(&self, width: u32, height: u32, rng: &mut SplitMix64) -> CropBox {
        let area = f64::from(width) * f64::from(height);
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.range(self.scale.0, self.scale.1);
            let aspect = rng.range(log_lo, log_hi).exp();
            let w = (target * aspect).sqrt().round() as u32;
            let h = (target / aspect).sqrt().round() as u32;
            if 0 < w && w <= width && 0 < h && h <= height {
                let y = rng.below(u64::from(height - h + 1)) as u32;
                let x = rng.below(u64::from(width - w + 1)) as u32;
                return CropBox {
                    x,
                    y,
                    width: w,
                    height: h,
                };
            }
        }
        let in_ratio = f64::from(width) / f64::from(height);
        let (w, h) = if in_ratio < self.ratio.0 {
            (width, (f64::from(width) / self.ratio.0).round() as u32)
        } else if in_ratio > self.ratio.1 {
            ((f64::from(height) * self.ratio.1).round() as u32, height)
        } else {
            (width, height)
        };
        CropBox {
            x: (width - w) / 2,
            y: (height - h) / 2,
            width: w,
            height: h,
        }
    }

    /// The augmented image as normalised `[3, size, size]` f32 samples (channel-major). Gray
    /// images are repeated to three channels, extra bands dropped; `rng` decides crop and
    /// flip.
    pub fn apply(&self, image: &Image, rng: &mut SplitMix64) -> Vec<f32> {
        let crop = self.crop(image.width, image.height, rng);
        let flip = rng.chance(self.flip);
        let resized = resize_box(image, crop, self.size);
        let channels = usize::from(image.channels);
        let side = self.size as usize;
        let plane = side * side;
        let mut out = vec![0f32; 3 * plane];
        for c in 0..3 {
            let source = if channels == 1 { 0 } else { c };
            let scale = (1.0 / (255.0 * IMAGENET_STD[c])) as f32;
            let shift = (IMAGENET_MEAN[c] / IMAGENET_STD[c]) as f32;
            let dst = &mut out[c * plane..(c + 1) * plane];
            for y in 0..side {
                for x in 0..side {
                    let from_x = if flip { side - 1 - x } else { x };
                    let v = resized[(y * side + from_x) * channels + source];
                    dst[y * side + x] = v * scale - shift;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_inside_and_cover_the_scale_range() {
        let augment = MaeAugment::new(224);
        let mut smallest: f64 = 1.0;
        let mut largest: f64 = 0.0;
        for i in 0..500 {
            let mut rng = SplitMix64::new(3, 9, i);
            let crop = augment.crop(300, 200, &mut rng);
            assert!(crop.x + crop.width <= 300 && crop.y + crop.height <= 200);
            let fraction = f64::from(crop.width * crop.height) / 60000.0;
            smallest = smallest.min(fraction);
            largest = largest.max(fraction);
        }
        assert!(smallest < 0.25 && smallest > 0.18, "{smallest}");
        // A 3:2 image holds at most a 4:3 crop of 0.89 of its area.
        assert!(largest > 0.8 && largest <= 0.89, "{largest}");
    }

    #[test]
    fn normalisation_matches_imagenet_statistics() {
        let mut image = Image::new(16, 16, 3);
        image.data.iter_mut().for_each(|v| *v = 255);
        let out = MaeAugment::new(8).apply(&image, &mut SplitMix64::new(1, 2, 3));
        assert_eq!(out.len(), 3 * 64);
        for c in 0..3 {
            let want = ((1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]) as f32;
            assert!(out[c * 64..(c + 1) * 64]
                .iter()
                .all(|v| (v - want).abs() < 1e-4));
        }
    }
}
