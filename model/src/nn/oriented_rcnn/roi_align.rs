//! Rotated RoI Align: each RoI's oriented rectangle is sampled on a regular grid by bilinear
//! interpolation from the pyramid level that fits its size, through one affine sampling grid
//! per RoI (`affine_grid_generator`) and one `grid_sampler` call per image and level.
//!
//! Feature pixel `(i, j)` of a level with stride `s` sits at image point `((j+½)s, (i+½)s)`.
//! Bin `(u, v)` of the `out×out` output averages `sampling²` points spread evenly over the bin
//! of the rotated rectangle, so point `(p, q)` of the fine grid samples
//! `c + R(angle)·((p+½)/n − ½)·w, ((q+½)/n − ½)·h)` with `n = out·sampling`.

use tch::{Kind, Tensor};

/// Settings of the RoI feature extractor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAlignSettings {
    /// Output side (bins).
    pub out: i64,
    /// Sample points per bin side.
    pub sampling: i64,
    /// RoIs with `sqrt(w·h)` below `2·finest_scale` use level 0, below `4·finest_scale` level 1…
    pub finest_scale: f64,
}

/// Pyramid level `[R]` for each RoI `[R, 5]`.
pub fn roi_levels(rois: &Tensor, num_levels: i64, finest_scale: f64) -> Tensor {
    let scale = (rois.select(1, 2) * rois.select(1, 3))
        .clamp_min(1e-6)
        .sqrt();
    (scale / finest_scale + 1e-6)
        .log2()
        .floor()
        .clamp(0.0, (num_levels - 1) as f64)
        .to_kind(Kind::Int64)
}

/// Affine maps `[R, 2, 3]` from output grid coordinates in `[−1, 1]` to normalised input
/// coordinates of an `height`×`width` map with `stride` (`align_corners = false`).
fn thetas(rois: &Tensor, stride: f64, height: i64, width: i64) -> Tensor {
    let (cx, cy, w, h, a) = (
        rois.select(1, 0),
        rois.select(1, 1),
        rois.select(1, 2),
        rois.select(1, 3),
        rois.select(1, 4),
    );
    let (sx, sy) = (
        2.0 / (stride * width as f64),
        2.0 / (stride * height as f64),
    );
    let (sin, cos) = (a.sin(), a.cos());
    let row_x = Tensor::stack(
        &[
            &cos * &w * (sx / 2.0),
            -&sin * &h * (sx / 2.0),
            &cx * sx - 1.0,
        ],
        1,
    );
    let row_y = Tensor::stack(
        &[
            &sin * &w * (sy / 2.0),
            &cos * &h * (sy / 2.0),
            &cy * sy - 1.0,
        ],
        1,
    );
    Tensor::stack(&[row_x, row_y], 1)
}

/// Features `[R, C, out, out]` of the RoIs of every image (`rois[b]` is `[R_b, 5]` in image
/// pixels), in the order of `rois`. `features[l]` is `[B, C, H_l, W_l]` with `strides[l]`.
pub fn rotated_roi_align(
    features: &[Tensor],
    strides: &[f64],
    rois: &[Tensor],
    cfg: &RoiAlignSettings,
) -> Tensor {
    let (_, channels, _, _) = features[0].size4().expect("features are [B, C, H, W]");
    let fine = cfg.out * cfg.sampling;
    let total: i64 = rois.iter().map(|r| r.size()[0]).sum();
    let device = features[0].device();
    let mut out = Tensor::zeros(
        [total, channels, cfg.out, cfg.out],
        (features[0].kind(), device),
    );
    let mut offset = 0;
    for (b, image_rois) in rois.iter().enumerate() {
        let count = image_rois.size()[0];
        let levels = roi_levels(image_rois, features.len() as i64, cfg.finest_scale);
        for (l, (level, &stride)) in features.iter().zip(strides).enumerate() {
            let idx = levels.eq(l as i64).nonzero().reshape([-1]);
            let n = idx.size()[0];
            if n == 0 {
                continue;
            }
            let (_, _, height, width) = level.size4().expect("features are [B, C, H, W]");
            let theta = thetas(&image_rois.index_select(0, &idx), stride, height, width);
            let grid = Tensor::affine_grid_generator(
                &theta.to_kind(level.kind()),
                [n, channels, fine, fine],
                false,
            )
            .reshape([1, n * fine, fine, 2]);
            let sampled = level
                .narrow(0, b as i64, 1)
                .grid_sampler(&grid, 0, 0, false)
                .reshape([channels, n, fine, fine])
                .permute([1, 0, 2, 3]);
            let pooled = sampled.avg_pool2d(
                [cfg.sampling, cfg.sampling],
                [cfg.sampling, cfg.sampling],
                [0, 0],
                false,
                true,
                None::<i64>,
            );
            out = out.index_copy(0, &(idx + offset), &pooled);
        }
        offset += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bilinear sample of a `[H, W]` map at image point `(x, y)` for `stride`, zero outside.
    fn bilinear(map: &[f32], height: usize, width: usize, stride: f64, x: f64, y: f64) -> f64 {
        let (fx, fy) = (x / stride - 0.5, y / stride - 0.5);
        let (x0, y0) = (fx.floor(), fy.floor());
        let mut sum = 0.0;
        for (dx, wx) in [(0.0, 1.0 - (fx - x0)), (1.0, fx - x0)] {
            for (dy, wy) in [(0.0, 1.0 - (fy - y0)), (1.0, fy - y0)] {
                let (px, py) = (x0 + dx, y0 + dy);
                if px >= 0.0 && py >= 0.0 && (px as usize) < width && (py as usize) < height {
                    sum += wx * wy * f64::from(map[py as usize * width + px as usize]);
                }
            }
        }
        sum
    }

    #[test]
    fn samples_the_rotated_crop_on_the_matching_level() {
        let (h, w) = (24i64, 32i64);
        let image: Vec<f32> = (0..h * w)
            .map(|i| {
                let (y, x) = ((i / w) as f32, (i % w) as f32);
                (0.3 * x).sin() * 5.0 + 0.2 * y * y - 0.1 * x * y
            })
            .collect();
        let fine = Tensor::from_slice(&image).reshape([1, 1, h, w]);
        // Level 1 at stride 2: a 2× average pool of level 0 (stride 1).
        let coarse = fine.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        let coarse_values = Vec::<f32>::try_from(coarse.reshape([-1])).unwrap();
        let rois = [
            (13.0, 10.0, 9.0, 5.0, 0.4, 0),
            (16.0, 12.0, 20.0, 14.0, -1.1, 1),
            (8.0, 9.0, 6.0, 6.0, 1.2, 0),
        ];
        let roi_tensor = Tensor::from_slice(
            &rois
                .iter()
                .flat_map(|r| [r.0, r.1, r.2, r.3, r.4].map(|v| v as f32))
                .collect::<Vec<_>>(),
        )
        .reshape([3, 5]);
        let cfg = RoiAlignSettings {
            out: 3,
            sampling: 2,
            finest_scale: 8.0,
        };
        let levels = Vec::<i64>::try_from(roi_levels(&roi_tensor, 2, cfg.finest_scale)).unwrap();
        assert_eq!(levels, rois.iter().map(|r| r.5).collect::<Vec<i64>>());
        let got = rotated_roi_align(&[fine, coarse], &[1.0, 2.0], &[roi_tensor], &cfg);
        assert_eq!(got.size(), vec![3, 1, 3, 3]);
        let got = Vec::<f32>::try_from(got.reshape([-1])).unwrap();
        let n = (cfg.out * cfg.sampling) as f64;
        for (r, roi) in rois.iter().enumerate() {
            let (cx, cy, rw, rh, a, level) = *roi;
            let (sin, cos) = f64::sin_cos(a);
            for v in 0..3 {
                for u in 0..3 {
                    let mut expected = 0.0;
                    for q in 0..2 {
                        for p in 0..2 {
                            let gx = ((u * 2 + p) as f64 + 0.5) / n - 0.5;
                            let gy = ((v * 2 + q) as f64 + 0.5) / n - 0.5;
                            let (dx, dy) = (gx * rw, gy * rh);
                            let (x, y) = (cx + cos * dx - sin * dy, cy + sin * dx + cos * dy);
                            expected += if level == 0 {
                                bilinear(&image, h as usize, w as usize, 1.0, x, y)
                            } else {
                                bilinear(&coarse_values, 12, 16, 2.0, x, y)
                            } / 4.0;
                        }
                    }
                    let value = f64::from(got[r * 9 + (v * 3 + u) as usize]);
                    assert!(
                        (value - expected).abs() < 1e-3,
                        "roi {r} bin ({u},{v}): {value} vs {expected}"
                    );
                }
            }
        }
    }
}
