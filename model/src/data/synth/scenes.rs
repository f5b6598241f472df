//! Synthetic Million-AID: scene images in category folders, one look per category.

use std::path::Path;

use super::raster::{ellipse, fill_polygon, rectangle, textured_background, to_u8};
use super::{SplitIds, SynthOptions};
use crate::data::error::DataResult;
use crate::data::image_io::{write_jpeg, Image};
use crate::rng::SplitMix64;

/// A scene category: its folder path and how it looks.
pub struct Scene {
    /// Category path under the split folder (Million-AID's level1/level2/level3 names).
    pub path: &'static str,
    base: [f64; 3],
    pattern: Pattern,
}

#[derive(Clone, Copy)]
enum Pattern {
    /// Parallel fields at one angle.
    Fields,
    /// Smooth texture only.
    Plain,
    /// Half sand, half water.
    Shore,
    /// A long bright strip.
    Strip,
    /// A grid of small houses.
    Houses,
    /// Round tanks.
    Tanks,
}

/// The synthetic categories.
pub const SCENES: [Scene; 8] = [
    Scene {
        path: "agriculture_land/arable_land/dry_field",
        base: [170.0, 150.0, 90.0],
        pattern: Pattern::Fields,
    },
    Scene {
        path: "agriculture_land/grassland/meadow",
        base: [110.0, 170.0, 80.0],
        pattern: Pattern::Plain,
    },
    Scene {
        path: "water_area/beach",
        base: [220.0, 200.0, 150.0],
        pattern: Pattern::Shore,
    },
    Scene {
        path: "water_area/lake",
        base: [40.0, 80.0, 150.0],
        pattern: Pattern::Plain,
    },
    Scene {
        path: "transportation_land/airport_area/runway",
        base: [120.0, 130.0, 110.0],
        pattern: Pattern::Strip,
    },
    Scene {
        path: "residential_land/detached_house",
        base: [100.0, 140.0, 90.0],
        pattern: Pattern::Houses,
    },
    Scene {
        path: "industrial_land/works/storage_tank",
        base: [150.0, 150.0, 150.0],
        pattern: Pattern::Tanks,
    },
    Scene {
        path: "unutilized_land/desert",
        base: [200.0, 170.0, 120.0],
        pattern: Pattern::Plain,
    },
];

fn paint(image: &mut Image, polygon: &[[f64; 2]], rgb: [f64; 3], rng: &mut SplitMix64) {
    let (w, h, c) = (image.width, image.height, image.channels as usize);
    fill_polygon(w, h, polygon, |x, y| {
        let start = (y as usize * w as usize + x as usize) * c;
        for (value, mean) in image.data[start..start + 3].iter_mut().zip(rgb) {
            *value = to_u8(mean + rng.range(-6.0, 6.0));
        }
    });
}

fn render(scene: &Scene, size: u32, rng: &mut SplitMix64) -> Image {
    let mut image = Image::new(size, size, 3);
    textured_background(&mut image, rng, scene.base, 20.0, 8.0);
    let side = f64::from(size);
    let angle = rng.range(0.0, std::f64::consts::PI);
    match scene.pattern {
        Pattern::Plain => {}
        Pattern::Fields => {
            let period = side / rng.range(5.0, 9.0);
            let mut offset = -side;
            while offset < side {
                let centre = [
                    side / 2.0 + offset * angle.cos(),
                    side / 2.0 + offset * angle.sin(),
                ];
                let tone = [
                    scene.base[0] - 50.0,
                    scene.base[1] + 10.0,
                    scene.base[2] - 30.0,
                ];
                paint(
                    &mut image,
                    &rectangle(centre, period / 2.0, side * 3.0, angle),
                    tone,
                    rng,
                );
                offset += period;
            }
        }
        Pattern::Shore => {
            let centre = [
                side / 2.0 + side * 0.6 * angle.cos(),
                side / 2.0 + side * 0.6 * angle.sin(),
            ];
            paint(
                &mut image,
                &rectangle(centre, side * 1.2, side * 3.0, angle),
                [30.0, 90.0, 160.0],
                rng,
            );
        }
        Pattern::Strip => {
            paint(
                &mut image,
                &rectangle([side / 2.0, side / 2.0], side * 3.0, side * 0.18, angle),
                [200.0, 200.0, 195.0],
                rng,
            );
        }
        Pattern::Houses => {
            let step = side / 6.0;
            for i in 0..6 {
                for j in 0..6 {
                    let centre = [(f64::from(i) + 0.5) * step, (f64::from(j) + 0.5) * step];
                    paint(
                        &mut image,
                        &rectangle(centre, step * 0.5, step * 0.4, angle),
                        [190.0, 90.0, 70.0],
                        rng,
                    );
                }
            }
        }
        Pattern::Tanks => {
            for _ in 0..(3 + rng.below(5)) {
                let r = side * rng.range(0.05, 0.1);
                let centre = [rng.range(r, side - r), rng.range(r, side - r)];
                paint(
                    &mut image,
                    &ellipse(centre, r, r, 0.0, 28),
                    [235.0, 235.0, 230.0],
                    rng,
                );
                paint(
                    &mut image,
                    &ellipse(centre, r * 0.3, r * 0.3, 0.0, 16),
                    [170.0, 170.0, 170.0],
                    rng,
                );
            }
        }
    }
    image
}

/// Million-AID layout: `{train,test}/<category path>/P<id>.jpg`, categories taken in turn.
pub fn write_millionaid(out: &Path, options: &SynthOptions, size: u32) -> DataResult<SplitIds> {
    let mut ids = SplitIds::default();
    for index in 0..options.images {
        let mut rng = SplitMix64::derive(options.seed, 5, index as u64);
        let scene = &SCENES[index % SCENES.len()];
        let image = render(scene, size, &mut rng);
        let id = format!("P{index:07}");
        let split = match ids.assign(index, options.images, &id) {
            "train" => "train",
            _ => "test",
        };
        write_jpeg(
            &out.join(split).join(scene.path).join(format!("{id}.jpg")),
            &image,
            92,
        )?;
    }
    Ok(ids)
}
