//! Separable resampling of a box of an 8-bit image to a new size with PIL's bicubic kernel
//! (a = −0.5), widened when shrinking so every source pixel contributes (antialiasing), as
//! PIL's `Image.resize(size, BICUBIC, box)` does.

use crate::data::image_io::Image;

/// A rectangle of source pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

/// PIL's bicubic kernel with a = −0.5; support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each of `out` output samples along one axis of a `len`-sample source segment starting
/// at `start`: the first source sample and the normalised weights of the samples from there.
fn axis_weights(start: u32, len: u32, out: u32, limit: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = f64::from(len) / f64::from(out);
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out)
        .map(|i| {
            let center = f64::from(start) + (f64::from(i) + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0)) as u32;
            let hi = ((center + support + 0.5).floor() as u32).min(limit);
            let mut weights: Vec<f64> = (lo..hi)
                .map(|j| bicubic((f64::from(j) + 0.5 - center) / filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            (lo as usize, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

/// The `crop` of `image` resized to `out × out`, as interleaved f32 samples in [0, 255]
/// (`out * out * channels` long).
pub fn resize_box(image: &Image, crop: CropBox, out: u32) -> Vec<f32> {
    let channels = usize::from(image.channels);
    let width = image.width as usize;
    let cols = axis_weights(crop.x, crop.width, out, image.width);
    let rows = axis_weights(crop.y, crop.height, out, image.height);
    let out = out as usize;
    // Horizontal pass over the source rows the vertical pass reads.
    let first_row = rows.first().map_or(0, |r| r.0);
    let last_row = rows.iter().map(|(lo, w)| lo + w.len()).max().unwrap_or(0);
    let mut horizontal = vec![0f32; (last_row - first_row) * out * channels];
    for (r, row) in (first_row..last_row).enumerate() {
        let src = &image.data[row * width * channels..(row + 1) * width * channels];
        let dst = &mut horizontal[r * out * channels..(r + 1) * out * channels];
        for (o, (lo, weights)) in cols.iter().enumerate() {
            for c in 0..channels {
                let mut acc = 0f32;
                for (k, w) in weights.iter().enumerate() {
                    acc += w * f32::from(src[(lo + k) * channels + c]);
                }
                dst[o * channels + c] = acc;
            }
        }
    }
    // Vertical pass.
    let mut result = vec![0f32; out * out * channels];
    let stride = out * channels;
    for (o, (lo, weights)) in rows.iter().enumerate() {
        let dst = &mut result[o * stride..(o + 1) * stride];
        for (k, w) in weights.iter().enumerate() {
            let src = &horizontal[(lo + k - first_row) * stride..(lo + k - first_row + 1) * stride];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += w * s;
            }
        }
    }
    result.iter_mut().for_each(|v| *v = v.clamp(0.0, 255.0));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Image {
        let mut image = Image::new(width, height, 3);
        for y in 0..height {
            for x in 0..width {
                let p = image.pixel_mut(x, y);
                p[0] = (x * 255 / (width - 1)) as u8;
                p[1] = (y * 255 / (height - 1)) as u8;
                p[2] = 77;
            }
        }
        image
    }

    #[test]
    fn identity_size_keeps_pixels() {
        let image = gradient(9, 7);
        let full = CropBox {
            x: 0,
            y: 2,
            width: 7,
            height: 5,
        };
        // A 7×5 box is not square; take a square one for the identity check.
        let square = CropBox {
            height: 7,
            y: 0,
            ..full
        };
        let out = resize_box(&image, square, 7);
        for y in 0..7usize {
            for x in 0..7usize {
                for c in 0..3usize {
                    let want = f32::from(image.pixel(x as u32, y as u32)[c]);
                    assert!((out[(y * 7 + x) * 3 + c] - want).abs() < 1e-3);
                }
            }
        }
    }

    #[test]
    fn constant_images_stay_constant_when_shrunk_or_grown() {
        let mut image = Image::new(40, 30, 3);
        image.data.iter_mut().for_each(|v| *v = 200);
        for out in [8, 64] {
            let crop = CropBox {
                x: 3,
                y: 4,
                width: 25,
                height: 20,
            };
            for v in resize_box(&image, crop, out) {
                assert!((v - 200.0).abs() < 1e-3, "{v}");
            }
        }
    }
}
