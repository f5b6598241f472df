//! Drawing primitives for synthetic images: value noise, textured backgrounds, polygon fills.

use crate::data::image_io::Image;
use crate::rng::SplitMix64;

/// Smooth noise in [0, 1]: random values on a grid of `cell` pixels, bilinearly interpolated.
pub fn value_noise(rng: &mut SplitMix64, width: u32, height: u32, cell: u32) -> Vec<f64> {
    let cell = cell.max(1) as usize;
    let (w, h) = (width as usize, height as usize);
    let (gw, gh) = (w / cell + 2, h / cell + 2);
    let grid: Vec<f64> = (0..gw * gh).map(|_| rng.uniform()).collect();
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let (gy, fy) = (y / cell, (y % cell) as f64 / cell as f64);
        for x in 0..w {
            let (gx, fx) = (x / cell, (x % cell) as f64 / cell as f64);
            let at = |i: usize, j: usize| grid[j * gw + i];
            let top = at(gx, gy) * (1.0 - fx) + at(gx + 1, gy) * fx;
            let bottom = at(gx, gy + 1) * (1.0 - fx) + at(gx + 1, gy + 1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// Clamps and rounds a sample.
pub fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Fills the first three channels with `base` colour, modulated by two scales of value noise
/// (±`variation`) and per-pixel jitter (±`jitter`).
pub fn textured_background(
    image: &mut Image,
    rng: &mut SplitMix64,
    base: [f64; 3],
    variation: f64,
    jitter: f64,
) {
    let coarse = value_noise(rng, image.width, image.height, (image.width / 4).max(8));
    let fine = value_noise(rng, image.width, image.height, (image.width / 32).max(2));
    let tint: [f64; 3] = [
        rng.range(-1.0, 1.0),
        rng.range(-1.0, 1.0),
        rng.range(-1.0, 1.0),
    ];
    let channels = image.channels as usize;
    for (i, px) in image.data.chunks_exact_mut(channels).enumerate() {
        let n = (coarse[i] - 0.5) * 2.0 * variation + (fine[i] - 0.5) * variation;
        for c in 0..3.min(channels) {
            let j = rng.range(-jitter, jitter);
            px[c] = to_u8(base[c] + n * (1.0 + 0.3 * tint[c]) + j);
        }
    }
}

/// Calls `paint(x, y)` for every pixel whose centre lies inside `polygon` (even-odd rule).
pub fn fill_polygon(
    width: u32,
    height: u32,
    polygon: &[[f64; 2]],
    mut paint: impl FnMut(u32, u32),
) {
    if polygon.len() < 3 {
        return;
    }
    let min_y = polygon
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0) as u32;
    let max_y = polygon
        .iter()
        .map(|p| p[1])
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .min(f64::from(height)) as u32;
    let mut crossings = Vec::new();
    for y in min_y..max_y {
        let yc = f64::from(y) + 0.5;
        crossings.clear();
        for i in 0..polygon.len() {
            let (a, b) = (polygon[i], polygon[(i + 1) % polygon.len()]);
            if (a[1] <= yc) != (b[1] <= yc) {
                crossings.push(a[0] + (yc - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
            }
        }
        crossings.sort_by(f64::total_cmp);
        for pair in crossings.chunks_exact(2) {
            let x0 = (pair[0] - 0.5).ceil().max(0.0) as u32;
            let x1 = ((pair[1] - 0.5).floor() + 1.0)
                .min(f64::from(width))
                .max(0.0) as u32;
            for x in x0..x1 {
                paint(x, y);
            }
        }
    }
}

/// A regular polygon approximating an ellipse with radii (rx, ry) at `centre`, turned by `angle`.
pub fn ellipse(centre: [f64; 2], rx: f64, ry: f64, angle: f64, sides: usize) -> Vec<[f64; 2]> {
    let (sin, cos) = angle.sin_cos();
    (0..sides)
        .map(|i| {
            let t = i as f64 / sides as f64 * std::f64::consts::TAU;
            let (dx, dy) = (rx * t.cos(), ry * t.sin());
            [
                centre[0] + cos * dx - sin * dy,
                centre[1] + sin * dx + cos * dy,
            ]
        })
        .collect()
}

/// A rectangle of size (w, h) at `centre` turned by `angle`, corners TL, TR, BR, BL.
pub fn rectangle(centre: [f64; 2], w: f64, h: f64, angle: f64) -> Vec<[f64; 2]> {
    let (sin, cos) = angle.sin_cos();
    [
        (-w / 2.0, -h / 2.0),
        (w / 2.0, -h / 2.0),
        (w / 2.0, h / 2.0),
        (-w / 2.0, h / 2.0),
    ]
    .iter()
    .map(|&(dx, dy)| {
        [
            centre[0] + cos * dx - sin * dy,
            centre[1] + sin * dx + cos * dy,
        ]
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_fill_covers_its_area() {
        let mut count = 0;
        fill_polygon(
            100,
            100,
            &rectangle([50.0, 50.0], 20.0, 10.0, 0.0),
            |_, _| count += 1,
        );
        assert_eq!(count, 200);
        let mut count = 0;
        fill_polygon(
            100,
            100,
            &rectangle([50.0, 50.0], 20.0, 10.0, 0.7),
            |_, _| count += 1,
        );
        assert!((190..=210).contains(&count), "{count}");
    }

    #[test]
    fn noise_is_in_range() {
        let mut rng = SplitMix64::from_state(3);
        let noise = value_noise(&mut rng, 33, 17, 8);
        assert_eq!(noise.len(), 33 * 17);
        assert!(noise.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
