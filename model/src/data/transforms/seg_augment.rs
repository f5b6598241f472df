//! The segmentation training pipeline of mmseg as RVSA's configs run it, on an 8-bit image and
//! its label map: random rescale (a ratio drawn from a range), a random crop that retries when
//! one class would fill most of it (`cat_max_ratio`), and photometric distortion (brightness,
//! contrast, saturation, hue). Every draw comes from the sample's own stream; with the options
//! off only the crop position is drawn.

use super::crop::random_crop_with_labels;
use crate::data::image_io::Image;
use crate::rng::SplitMix64;

/// Crops tried before the last one is kept (mmseg's `RandomCrop`).
const CROP_TRIES: usize = 10;
/// Largest brightness shift, in 8-bit levels.
const BRIGHTNESS_DELTA: f64 = 32.0;
/// Range of the contrast and saturation factors.
const FACTOR_RANGE: (f64, f64) = (0.5, 1.5);
/// Largest hue shift in OpenCV's 0–180 hue units (so twice that in degrees).
const HUE_DELTA: u64 = 18;

/// What a segmentation stage does to each training image before it becomes a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegAugment {
    /// Side of the square crop.
    pub crop: u32,
    /// The shorter side the image is scaled to before the ratio (None: its own).
    pub resize_side: Option<u32>,
    /// Range of the random ratio the shorter side is scaled by (`(1, 1)`: no rescale).
    pub ratio_range: (f64, f64),
    /// A crop is retried while one class covers at least this share of its labelled pixels
    /// (1: never retried).
    pub cat_max_ratio: f64,
    /// Random brightness, contrast, saturation and hue.
    pub photometric: bool,
    /// The label of padding and unlabelled pixels.
    pub ignore: u8,
}

impl SegAugment {
    /// A plain random crop of `crop` pixels.
    pub fn crop_only(crop: u32, ignore: u8) -> Self {
        SegAugment {
            crop,
            resize_side: None,
            ratio_range: (1.0, 1.0),
            cat_max_ratio: 1.0,
            photometric: false,
            ignore,
        }
    }

    /// The `crop × crop` image and label map of one training sample (`labels` a one-channel
    /// image the size of `image`).
    pub fn apply(&self, image: &Image, labels: &Image, rng: &mut SplitMix64) -> (Image, Image) {
        let (image, labels) = self.rescale(image, labels, rng);
        let mut crop = random_crop_with_labels(&image, &labels, self.crop, self.ignore, rng);
        for _ in 1..CROP_TRIES {
            if self.cat_max_ratio >= 1.0
                || !one_class_dominates(&crop.1, self.ignore, self.cat_max_ratio)
            {
                break;
            }
            crop = random_crop_with_labels(&image, &labels, self.crop, self.ignore, rng);
        }
        let (mut image, labels) = crop;
        if self.photometric {
            distort(&mut image, rng);
        }
        (image, labels)
    }

    /// The image (bilinear) and labels (nearest) scaled as [`Self::resize_side`] and a ratio
    /// from [`Self::ratio_range`] say; unchanged (and nothing drawn) without a rescale.
    fn rescale(&self, image: &Image, labels: &Image, rng: &mut SplitMix64) -> (Image, Image) {
        let (lo, hi) = self.ratio_range;
        if self.resize_side.is_none() && lo == 1.0 && hi == 1.0 {
            return (image.clone(), labels.clone());
        }
        let ratio = if hi > lo { rng.range(lo, hi) } else { lo };
        let short = f64::from(image.width.min(image.height));
        let target = f64::from(self.resize_side.unwrap_or(image.width.min(image.height)));
        let scale = target * ratio / short;
        let width = ((f64::from(image.width) * scale).round() as u32).max(1);
        let height = ((f64::from(image.height) * scale).round() as u32).max(1);
        (
            resize_bilinear(image, width, height),
            resize_nearest(labels, width, height),
        )
    }
}

/// Whether one class covers at least `ratio` of the labelled (not `ignore`) pixels of `labels`,
/// or there is only one class (mmseg's test: keep a crop with several classes none of which
/// reaches the ratio).
fn one_class_dominates(labels: &Image, ignore: u8, ratio: f64) -> bool {
    let mut counts = [0usize; 256];
    for &label in &labels.data {
        counts[label as usize] += 1;
    }
    counts[ignore as usize] = 0;
    let total: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&n| n > 0).count();
    let largest = counts.iter().copied().max().unwrap_or(0);
    present <= 1 || largest as f64 / total.max(1) as f64 >= ratio
}

/// `image` resized to `width × height` by bilinear interpolation with pixel centres aligned
/// (OpenCV's `INTER_LINEAR`).
pub fn resize_bilinear(image: &Image, width: u32, height: u32) -> Image {
    let mut out = Image::new(width, height, image.channels);
    let (sx, sy) = (
        f64::from(image.width) / f64::from(width),
        f64::from(image.height) / f64::from(height),
    );
    let source = |dst: u32, scale: f64, len: u32| {
        let p = ((f64::from(dst) + 0.5) * scale - 0.5).clamp(0.0, f64::from(len - 1));
        let i = p.floor() as u32;
        (i, (i + 1).min(len - 1), p - f64::from(i))
    };
    for y in 0..height {
        let (y0, y1, fy) = source(y, sy, image.height);
        for x in 0..width {
            let (x0, x1, fx) = source(x, sx, image.width);
            for c in 0..image.channels as usize {
                let at = |x: u32, y: u32| f64::from(image.pixel(x, y)[c]);
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                out.pixel_mut(x, y)[c] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
        }
    }
    out
}

/// `labels` resized to `width × height`, each pixel taking its nearest source pixel.
pub fn resize_nearest(labels: &Image, width: u32, height: u32) -> Image {
    let mut out = Image::new(width, height, labels.channels);
    for y in 0..height {
        let sy = ((u64::from(y) * u64::from(labels.height)) / u64::from(height)) as u32;
        for x in 0..width {
            let sx = ((u64::from(x) * u64::from(labels.width)) / u64::from(width)) as u32;
            out.pixel_mut(x, y).copy_from_slice(labels.pixel(sx, sy));
        }
    }
    out
}

/// mmseg's `PhotoMetricDistortion` on an RGB image: each of brightness (±32), contrast
/// (×0.5–1.5, before or after the colour changes), saturation (×0.5–1.5) and hue (±18 OpenCV
/// units) applied with probability ½, values clipped to 0–255 after each.
fn distort(image: &mut Image, rng: &mut SplitMix64) {
    let mut pixels: Vec<f64> = image.data.iter().map(|&v| f64::from(v)).collect();
    let clip = |v: &mut f64| *v = v.clamp(0.0, 255.0);
    if rng.below(2) == 1 {
        let delta = rng.range(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA);
        pixels.iter_mut().for_each(|v| {
            *v += delta;
            clip(v)
        });
    }
    let contrast_first = rng.below(2) == 1;
    let contrast = |pixels: &mut Vec<f64>, rng: &mut SplitMix64| {
        if rng.below(2) == 1 {
            let alpha = rng.range(FACTOR_RANGE.0, FACTOR_RANGE.1);
            pixels.iter_mut().for_each(|v| {
                *v *= alpha;
                clip(v)
            });
        }
    };
    if contrast_first {
        contrast(&mut pixels, rng);
    }
    let saturation = (rng.below(2) == 1).then(|| rng.range(FACTOR_RANGE.0, FACTOR_RANGE.1));
    let hue =
        (rng.below(2) == 1).then(|| (rng.below(2 * HUE_DELTA + 1) as f64 - HUE_DELTA as f64) * 2.0);
    if (saturation.is_some() || hue.is_some()) && image.channels >= 3 {
        let channels = image.channels as usize;
        for px in pixels.chunks_exact_mut(channels) {
            let (mut h, mut s, v) = rgb_to_hsv(px[0], px[1], px[2]);
            if let Some(factor) = saturation {
                s = (s * factor).clamp(0.0, 1.0);
            }
            if let Some(shift) = hue {
                h = (h + shift).rem_euclid(360.0);
            }
            let (r, g, b) = hsv_to_rgb(h, s, v);
            px[0] = r.clamp(0.0, 255.0);
            px[1] = g.clamp(0.0, 255.0);
            px[2] = b.clamp(0.0, 255.0);
        }
    }
    if !contrast_first {
        contrast(&mut pixels, rng);
    }
    for (out, v) in image.data.iter_mut().zip(pixels) {
        *out = v.round() as u8;
    }
}

/// Hue in degrees, saturation and value (0–255) of an RGB colour.
fn rgb_to_hsv(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let saturation = if max == 0.0 { 0.0 } else { delta / max };
    (hue, saturation, max)
}

/// The RGB colour of a hue in degrees, a saturation and a value (0–255).
fn hsv_to_rgb(h: f64, s: f64, v: f64) -> (f64, f64, f64) {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0).rem_euclid(2.0) - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    (r + m, g + m, b + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(width: u32, height: u32, label: impl Fn(u32, u32) -> u8) -> (Image, Image) {
        let mut image = Image::new(width, height, 3);
        let mut labels = Image::new(width, height, 1);
        for y in 0..height {
            for x in 0..width {
                let l = label(x, y);
                labels.pixel_mut(x, y)[0] = l;
                image
                    .pixel_mut(x, y)
                    .copy_from_slice(&[l * 40, 100, 200 - l * 30]);
            }
        }
        (image, labels)
    }

    #[test]
    fn crop_only_draws_the_position_alone() {
        let (image, labels) = labelled(20, 16, |x, _| u8::from(x > 9));
        let plain = SegAugment::crop_only(8, 255);
        let mut a = SplitMix64::new(1, 2, 3);
        let mut b = SplitMix64::new(1, 2, 3);
        let (img, lab) = plain.apply(&image, &labels, &mut a);
        let (img2, lab2) = random_crop_with_labels(&image, &labels, 8, 255, &mut b);
        assert_eq!((img, lab), (img2, lab2));
        assert_eq!(a.next_u64(), b.next_u64(), "the same draws");
    }

    #[test]
    fn rescaling_keeps_labels_crisp_and_scales_the_shorter_side() {
        let (image, labels) = labelled(40, 20, |x, _| u8::from(x >= 20) * 3);
        let half = resize_nearest(&labels, 20, 10);
        assert!(half.data.iter().all(|&l| l == 0 || l == 3));
        assert_eq!(half.pixel(9, 5)[0], 0);
        assert_eq!(half.pixel(10, 5)[0], 3);
        let grown = resize_bilinear(&image, 80, 40);
        assert_eq!((grown.width, grown.height), (80, 40));
        assert_eq!(grown.pixel(0, 0), image.pixel(0, 0));
        let augment = SegAugment {
            resize_side: Some(10),
            ratio_range: (2.0, 2.0),
            ..SegAugment::crop_only(30, 255)
        };
        let (img, lab) = augment.apply(&image, &labels, &mut SplitMix64::new(0, 0, 0));
        // Shorter side 20 → 10 × 2 = 20: no change in size, a 30 crop pads the rest.
        assert_eq!((img.width, lab.width), (30, 30));
    }

    #[test]
    fn crops_where_one_class_dominates_are_retried() {
        // A 64² map with a small second class in one corner: most 16² crops hold one class.
        let (image, labels) = labelled(64, 64, |x, y| u8::from(x < 20 && y < 20));
        let strict = SegAugment {
            cat_max_ratio: 0.75,
            ..SegAugment::crop_only(16, 255)
        };
        let plain = SegAugment::crop_only(16, 255);
        let mixed = |augment: &SegAugment| {
            (0..200)
                .filter(|&i| {
                    let (_, lab) = augment.apply(&image, &labels, &mut SplitMix64::new(9, 1, i));
                    !one_class_dominates(&lab, 255, 0.75)
                })
                .count()
        };
        let (with_retries, without) = (mixed(&strict), mixed(&plain));
        assert!(with_retries > 2 * without, "{with_retries} vs {without}");
    }

    #[test]
    fn photometric_distortion_changes_colours_only_within_range() {
        let (image, labels) = labelled(8, 8, |x, y| ((x + y) % 4) as u8);
        let augment = SegAugment {
            photometric: true,
            ..SegAugment::crop_only(8, 255)
        };
        let changed = (0..20).any(|i| {
            let (img, lab) = augment.apply(&image, &labels, &mut SplitMix64::new(4, 4, i));
            assert_eq!(lab, labels, "labels untouched");
            img != image
        });
        assert!(changed);
        for (r, g, b) in [(10.0, 200.0, 30.0), (255.0, 0.0, 0.0), (90.0, 90.0, 90.0)] {
            let (h, s, v) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() < 1e-9 && (g - g2).abs() < 1e-9 && (b - b2).abs() < 1e-9);
        }
    }
}
