//! Synthetic segmentation tiles in the ISPRS Potsdam and LoveDA layouts: class regions
//! (roads, rotated buildings, blobs of vegetation, water, small cars) painted into a label map,
//! then rendered with a distinct colour and texture per class.

use std::f64::consts::PI;
use std::path::Path;

use super::raster::{ellipse, fill_polygon, rectangle, to_u8, value_noise};
use super::{SplitIds, SynthOptions};
use crate::data::error::DataResult;
use crate::data::formats::loveda::{self, LovedaDomain, LovedaSplit, IGNORE_INDEX};
use crate::data::formats::potsdam;
use crate::data::image_io::{write_png, write_tiff, Image, TiffCompression};
use crate::rng::SplitMix64;

/// A label map under construction.
struct LabelMap {
    size: u32,
    labels: Vec<u8>,
}

impl LabelMap {
    fn new(size: u32, fill: u8) -> Self {
        LabelMap {
            size,
            labels: vec![fill; size as usize * size as usize],
        }
    }

    fn paint(&mut self, polygon: &[[f64; 2]], class: u8, only_over: Option<u8>) {
        let size = self.size as usize;
        let labels = &mut self.labels;
        fill_polygon(self.size, self.size, polygon, |x, y| {
            let cell = &mut labels[y as usize * size + x as usize];
            if only_over.is_none_or(|c| *cell == c) {
                *cell = class;
            }
        });
    }

    fn at(&self, x: f64, y: f64) -> Option<u8> {
        let s = f64::from(self.size);
        ((0.0..s).contains(&x) && (0.0..s).contains(&y))
            .then(|| self.labels[y as usize * self.size as usize + x as usize])
    }
}

fn random_point(rng: &mut SplitMix64, side: f64) -> [f64; 2] {
    [rng.range(0.0, side), rng.range(0.0, side)]
}

/// A count drawn from `lo..=hi`, scaled by `crowd` (the tile's area relative to 512²).
fn scaled_count(rng: &mut SplitMix64, (lo, hi, crowd): (usize, usize, f64)) -> usize {
    ((lo + rng.index_below(hi - lo + 1)) as f64 * crowd).round() as usize
}

/// Long straight strips across the tile; returns their angles.
fn roads(map: &mut LabelMap, rng: &mut SplitMix64, class: u8, max_count: usize) -> Vec<f64> {
    let side = f64::from(map.size);
    let count = 1 + rng.index_below(max_count);
    (0..count)
        .map(|_| {
            let angle = if rng.chance(0.6) {
                (rng.below(2) as f64) * PI / 2.0
            } else {
                rng.range(0.0, PI)
            };
            let width = side * rng.range(0.05, 0.09);
            map.paint(
                &rectangle(random_point(rng, side), side * 3.0, width, angle),
                class,
                None,
            );
            angle
        })
        .collect()
}

fn rectangles(
    map: &mut LabelMap,
    rng: &mut SplitMix64,
    class: u8,
    counts: (usize, usize, f64),
    scale: (f64, f64),
    only_over: Option<u8>,
) {
    let side = f64::from(map.size);
    for _ in 0..scaled_count(rng, counts) {
        let (w, h) = (
            side * rng.range(scale.0, scale.1),
            side * rng.range(scale.0, scale.1),
        );
        map.paint(
            &rectangle(random_point(rng, side), w, h, rng.range(0.0, PI)),
            class,
            only_over,
        );
    }
}

fn blobs(
    map: &mut LabelMap,
    rng: &mut SplitMix64,
    class: u8,
    counts: (usize, usize, f64),
    scale: (f64, f64),
    only_over: Option<u8>,
) {
    let side = f64::from(map.size);
    for _ in 0..scaled_count(rng, counts) {
        let centre = random_point(rng, side);
        for _ in 0..3 {
            let r = side * rng.range(scale.0, scale.1);
            let offset = [centre[0] + rng.range(-r, r), centre[1] + rng.range(-r, r)];
            map.paint(
                &ellipse(offset, r, r * rng.range(0.6, 1.0), rng.range(0.0, PI), 20),
                class,
                only_over,
            );
        }
    }
}

/// How a class is rendered: mean colour, near-infrared level, texture strength, stripe period.
#[derive(Clone, Copy)]
struct ClassLook {
    rgb: [f64; 3],
    infrared: f64,
    grain: f64,
    stripes: Option<f64>,
}

fn render(map: &LabelMap, looks: &[ClassLook], rng: &mut SplitMix64, channels: u8) -> Image {
    let size = map.size;
    let mut image = Image::new(size, size, channels);
    let coarse = value_noise(rng, size, size, (size / 6).max(4));
    let fine = value_noise(rng, size, size, 2);
    let c = channels as usize;
    for (i, px) in image.data.chunks_exact_mut(c).enumerate() {
        let label = map.labels[i];
        let Some(look) = looks.get(label as usize) else {
            continue;
        };
        let (x, y) = ((i % size as usize) as f64, (i / size as usize) as f64);
        let stripe = look.stripes.map_or(0.0, |p| {
            if (((x + y) / p).floor() as i64) % 2 == 0 {
                12.0
            } else {
                -12.0
            }
        });
        let shade = (coarse[i] - 0.5) * 30.0 + (fine[i] - 0.5) * look.grain + stripe;
        for (k, value) in px.iter_mut().enumerate().take(3) {
            *value = to_u8(look.rgb[k] + shade + rng.range(-5.0, 5.0));
        }
        if c == 4 {
            px[3] = to_u8(look.infrared + shade * 0.5);
        }
    }
    image
}

const POTSDAM_LOOKS: [ClassLook; 6] = [
    ClassLook {
        rgb: [150.0, 150.0, 145.0],
        infrared: 90.0,
        grain: 10.0,
        stripes: None,
    },
    ClassLook {
        rgb: [185.0, 85.0, 65.0],
        infrared: 70.0,
        grain: 6.0,
        stripes: Some(5.0),
    },
    ClassLook {
        rgb: [130.0, 185.0, 95.0],
        infrared: 210.0,
        grain: 18.0,
        stripes: None,
    },
    ClassLook {
        rgb: [35.0, 95.0, 40.0],
        infrared: 235.0,
        grain: 50.0,
        stripes: None,
    },
    ClassLook {
        rgb: [230.0, 215.0, 40.0],
        infrared: 60.0,
        grain: 4.0,
        stripes: None,
    },
    ClassLook {
        rgb: [120.0, 70.0, 140.0],
        infrared: 110.0,
        grain: 30.0,
        stripes: None,
    },
];

fn potsdam_map(rng: &mut SplitMix64, size: u32) -> LabelMap {
    let crowd = (f64::from(size) / 512.0).powi(2).max(0.5);
    let mut map = LabelMap::new(size, 2);
    let angles = roads(&mut map, rng, 0, 2);
    rectangles(&mut map, rng, 1, (2, 5, crowd), (0.08, 0.22), Some(2));
    blobs(&mut map, rng, 3, (2, 6, crowd), (0.03, 0.06), Some(2));
    blobs(&mut map, rng, 5, (1, 2, crowd), (0.015, 0.03), Some(2));
    // Cars sit on roads, aligned with them.
    let side = f64::from(size);
    let cars = scaled_count(rng, (3, 8, crowd));
    let mut placed = 0;
    for _ in 0..cars * 20 {
        if placed == cars {
            break;
        }
        let p = random_point(rng, side);
        if map.at(p[0], p[1]) == Some(0) {
            let angle = angles[rng.index_below(angles.len())];
            map.paint(&rectangle(p, side * 0.035, side * 0.017, angle), 4, Some(0));
            placed += 1;
        }
    }
    map
}

/// Pixels around class boundaries that the synthetic eroded labels ignore (ISPRS erodes by a
/// 3-pixel radius at 5 cm; the toy tiles are 128 px).
const ERODED_RADIUS: u32 = 1;

/// Potsdam layout: `2_Ortho_RGB/top_potsdam_<a>_<b>_RGB.tif`, `4_Ortho_RGBIR/..._RGBIR.tif`
/// (4 bands, PackBits), `5_Labels_all/..._label.tif` (ISPRS palette) and
/// `5_Labels_all_noBoundary/..._label_noBoundary.tif` (boundaries within 1 px black).
pub fn write_potsdam(out: &Path, options: &SynthOptions, size: u32) -> DataResult<SplitIds> {
    let mut ids = SplitIds::default();
    for index in 0..options.images {
        let mut rng = SplitMix64::derive(options.seed, 3, index as u64);
        let map = potsdam_map(&mut rng, size);
        let rgbir = render(&map, &POTSDAM_LOOKS, &mut rng, 4);
        let rgb = Image {
            width: size,
            height: size,
            channels: 3,
            data: rgbir
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        };
        let id = format!("{}_{}", 2 + index / 6, 10 + index % 6);
        // Held out as the readers hold out real Potsdam: the standard test tile ids.
        ids.push(&id, potsdam::is_held_out(&id, None));
        let name = |kind: &str| format!("top_potsdam_{id}_{kind}.tif");
        write_tiff(
            &out.join("2_Ortho_RGB").join(name("RGB")),
            &rgb,
            TiffCompression::None,
        )?;
        write_tiff(
            &out.join("4_Ortho_RGBIR").join(name("RGBIR")),
            &rgbir,
            TiffCompression::PackBits,
        )?;
        potsdam::write_label(
            &out.join("5_Labels_all").join(name("label")),
            &map.labels,
            size,
            size,
        )?;
        potsdam::write_label(
            &out.join("5_Labels_all_noBoundary")
                .join(name("label_noBoundary")),
            &potsdam::erode_boundaries(&map.labels, size, size, ERODED_RADIUS),
            size,
            size,
        )?;
    }
    Ok(ids)
}

const LOVEDA_LOOKS: [ClassLook; 7] = [
    ClassLook {
        rgb: [170.0, 160.0, 140.0],
        infrared: 0.0,
        grain: 12.0,
        stripes: None,
    },
    ClassLook {
        rgb: [200.0, 80.0, 70.0],
        infrared: 0.0,
        grain: 6.0,
        stripes: Some(4.0),
    },
    ClassLook {
        rgb: [95.0, 95.0, 100.0],
        infrared: 0.0,
        grain: 6.0,
        stripes: None,
    },
    ClassLook {
        rgb: [40.0, 80.0, 170.0],
        infrared: 0.0,
        grain: 5.0,
        stripes: None,
    },
    ClassLook {
        rgb: [210.0, 180.0, 120.0],
        infrared: 0.0,
        grain: 25.0,
        stripes: None,
    },
    ClassLook {
        rgb: [30.0, 90.0, 35.0],
        infrared: 0.0,
        grain: 45.0,
        stripes: None,
    },
    ClassLook {
        rgb: [140.0, 195.0, 90.0],
        infrared: 0.0,
        grain: 8.0,
        stripes: Some(7.0),
    },
];

fn loveda_map(rng: &mut SplitMix64, size: u32, domain: LovedaDomain) -> LabelMap {
    let crowd = (f64::from(size) / 512.0).powi(2).max(0.5);
    let urban = domain == LovedaDomain::Urban;
    let mut map = LabelMap::new(size, if urban { 0 } else { 6 });
    let open = Some(if urban { 0 } else { 6 });
    if rng.chance(0.6) {
        blobs(&mut map, rng, 3, (1, 1, 1.0), (0.08, 0.15), None);
    }
    rectangles(
        &mut map,
        rng,
        6,
        (1, if urban { 2 } else { 4 }, crowd),
        (0.15, 0.35),
        open,
    );
    blobs(&mut map, rng, 5, (1, 4, crowd), (0.04, 0.08), open);
    blobs(&mut map, rng, 4, (0, 2, crowd), (0.03, 0.06), open);
    roads(&mut map, rng, 2, if urban { 3 } else { 2 });
    let buildings = if urban { (6, 14, crowd) } else { (1, 4, crowd) };
    rectangles(&mut map, rng, 1, buildings, (0.04, 0.1), open);
    if rng.chance(0.3) {
        // A no-data band along one border, as at the edges of LoveDA scenes.
        let side = f64::from(size);
        let band = side * rng.range(0.05, 0.15);
        let (x, y, w, h) = match rng.below(4) {
            0 => (band / 2.0, side / 2.0, band, side),
            1 => (side - band / 2.0, side / 2.0, band, side),
            2 => (side / 2.0, band / 2.0, side, band),
            _ => (side / 2.0, side - band / 2.0, side, band),
        };
        map.paint(&rectangle([x, y], w, h, 0.0), IGNORE_INDEX, None);
    }
    map
}

/// LoveDA layout: `{Train,Val}/{Urban,Rural}/images_png/<id>.png` and `masks_png/<id>.png`
/// (0 = no-data, 1–7 = classes), and `Test/{Urban,Rural}/images_png/<id>.png` without masks for
/// the test images asked for; even items are Urban, odd Rural.
pub fn write_loveda(out: &Path, options: &SynthOptions, size: u32) -> DataResult<SplitIds> {
    let mut ids = SplitIds::default();
    for index in 0..options.images {
        let mut rng = SplitMix64::derive(options.seed, 4, index as u64);
        let domain = loveda_domain(index);
        let map = loveda_map(&mut rng, size, domain);
        let image = render(&map, &LOVEDA_LOOKS, &mut rng, 3);
        let id = index.to_string();
        let split = match ids.assign(index, options.images, &id) {
            "train" => LovedaSplit::Train,
            _ => LovedaSplit::Val,
        };
        write_png(
            &loveda::images_dir(out, split, domain).join(format!("{id}.png")),
            &image,
        )?;
        loveda::write_mask(
            &loveda::masks_dir(out, split, domain).join(format!("{id}.png")),
            &map.labels,
            size,
            size,
        )?;
    }
    for index in options.images..options.images + options.test_images {
        let mut rng = SplitMix64::derive(options.seed, 4, index as u64);
        let domain = loveda_domain(index);
        let map = loveda_map(&mut rng, size, domain);
        let image = render(&map, &LOVEDA_LOOKS, &mut rng, 3);
        let id = index.to_string();
        write_png(
            &loveda::images_dir(out, LovedaSplit::Test, domain).join(format!("{id}.png")),
            &image,
        )?;
        ids.test.push(id);
    }
    Ok(ids)
}

/// Even items are Urban, odd Rural.
fn loveda_domain(index: usize) -> LovedaDomain {
    if index.is_multiple_of(2) {
        LovedaDomain::Urban
    } else {
        LovedaDomain::Rural
    }
}
