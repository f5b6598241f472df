//! Cutting large images into patches and merging patch detections back.
//!
//! # DOTA splitting ([`split_image`])
//! Windows of `patch_size` (default 1024) step by `patch_size - gap` (default gap 200) from the
//! top-left; the last window of a row or column is moved back to end at the image border, as
//! the DOTA devkit's `ImgSplit` does, so only images smaller than a patch are padded (with
//! `pad_value`, default 0, at the right and bottom). Windows are ordered by x, then y. Patch
//! names are `<image>__1__<x>___<y>` (the devkit's scheme at scale 1).
//!
//! An object is clipped to the window; `fraction` = clipped area / object area:
//! - `fraction` = 1 (within 1e-9): kept unchanged (shifted into patch coordinates);
//! - `keep_threshold ≤ fraction < 1` (default 0.7): kept, clipped, with its difficult flag;
//! - `0 < fraction < keep_threshold`: [`CutPolicy::MarkDifficult`] keeps it, clipped, with
//!   difficult = 2 (the devkit's behaviour); [`CutPolicy::Drop`] drops it;
//! - `fraction` = 0 or a degenerate object (area 0): dropped.
//!
//! A clipped outline with 4 corners is kept as is; with 5 corners the shortest edge is merged
//! into its midpoint (as the devkit does); with 3 or more than 5 corners the object is dropped
//! (the devkit does the same). The clipped quadrilateral starts at the corner that best matches
//! the original's first corner. Unlike the devkit, coordinates stay real numbers (the devkit
//! truncates them to integers) and the window's right/bottom edge is the image border itself
//! (the devkit stops one pixel short).
//!
//! # Merging ([`merge_detections`])
//! Detections named by patch are shifted back to image coordinates and deduplicated per image
//! and class by rotated NMS (IoU of the minimum-area rectangles of the quadrilaterals,
//! default threshold 0.1, MMRotate's merge setting).
//!
//! # Segmentation crops ([`crop_windows`])
//! Windows of `size` every `stride`, the last one aligned to the border (as MMSegmentation's
//! sliding-window and the ISPRS/LoveDA cropping scripts do).

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::error::{DataError, DataResult};
use crate::data::formats::dota::{
    read_split, write_label, ClassCheck, DotaLabel, DotaObject, Task1Detection,
};
use crate::data::image_io::{read_image, write_png, Image};
use crate::geometry::{polygon_area, rotated_nms_per_class, RotatedBox};

/// What to do with an object whose part inside a window is below the keep threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPolicy {
    /// Keep it, clipped, with difficult = 2 (DOTA devkit).
    MarkDifficult,
    /// Leave it out of the patch.
    Drop,
}

/// Settings of the DOTA splitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitOptions {
    /// Side of a square patch in pixels.
    pub patch_size: u32,
    /// Overlap between neighbouring patches in pixels.
    pub gap: u32,
    /// Minimum fraction of an object's area inside a window to keep its difficult flag.
    pub keep_threshold: f64,
    /// Objects below the threshold.
    pub below_threshold: CutPolicy,
    /// Value of padded pixels.
    pub pad_value: u8,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            patch_size: 1024,
            gap: 200,
            keep_threshold: 0.7,
            below_threshold: CutPolicy::MarkDifficult,
            pad_value: 0,
        }
    }
}

/// A window of an image: its top-left corner and the size of the part inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width inside the image (≤ the patch size).
    pub width: u32,
    /// Height inside the image (≤ the patch size).
    pub height: u32,
}

/// Start offsets along one side: every `step` from 0, the last one moved back to end at `len`.
pub fn window_starts(len: u32, size: u32, step: u32) -> Vec<u32> {
    let step = step.max(1);
    let mut starts = Vec::new();
    let mut start = 0u32;
    loop {
        if start.saturating_add(size) >= len {
            starts.push(len.saturating_sub(size));
            break;
        }
        starts.push(start);
        start += step;
    }
    starts.dedup();
    starts
}

fn windows(width: u32, height: u32, size: u32, step: u32) -> Vec<Window> {
    let ys = window_starts(height, size, step);
    window_starts(width, size, step)
        .into_iter()
        .flat_map(|x| {
            ys.iter().map(move |&y| Window {
                x,
                y,
                width: size.min(width - x),
                height: size.min(height - y),
            })
        })
        .collect()
}

/// The DOTA split windows of a `width`×`height` image, ordered by x, then y.
pub fn split_windows(width: u32, height: u32, options: &SplitOptions) -> Vec<Window> {
    let step = options.patch_size.saturating_sub(options.gap);
    windows(width, height, options.patch_size, step)
}

/// Segmentation crop windows of `size` every `stride`, the last aligned to the border.
pub fn crop_windows(width: u32, height: u32, size: u32, stride: u32) -> Vec<Window> {
    windows(width, height, size, stride)
}

/// The name of the patch of `image_id` at `window`.
pub fn patch_name(image_id: &str, window: &Window) -> String {
    format!("{image_id}__1__{}___{}", window.x, window.y)
}

/// Splits a patch name `<image>__<scale>__<x>___<y>` into image id and offset.
pub fn parse_patch_name(name: &str) -> Option<(String, u32, u32)> {
    let (head, y) = name.rsplit_once("___")?;
    let (head, x) = head.rsplit_once("__")?;
    let (image, _scale) = head.rsplit_once("__")?;
    Some((image.to_string(), x.parse().ok()?, y.parse().ok()?))
}

/// Sutherland–Hodgman clip of a polygon to the axis-aligned rectangle [x0, x1]×[y0, y1].
fn clip_to_rect(points: &[[f64; 2]], x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
    type Edge = (fn(&[f64; 2], f64) -> bool, usize, f64);
    let edges: [Edge; 4] = [
        (|p, v| p[0] >= v, 0, x0),
        (|p, v| p[0] <= v, 0, x1),
        (|p, v| p[1] >= v, 1, y0),
        (|p, v| p[1] <= v, 1, y1),
    ];
    let mut poly = points.to_vec();
    for (inside, axis, value) in edges {
        if poly.is_empty() {
            break;
        }
        let input = std::mem::take(&mut poly);
        for (i, current) in input.iter().enumerate() {
            let previous = &input[(i + input.len() - 1) % input.len()];
            let (cur_in, prev_in) = (inside(current, value), inside(previous, value));
            if cur_in != prev_in {
                let t = (value - previous[axis]) / (current[axis] - previous[axis]);
                let mut p = [
                    previous[0] + t * (current[0] - previous[0]),
                    previous[1] + t * (current[1] - previous[1]),
                ];
                p[axis] = value;
                poly.push(p);
            }
            if cur_in {
                poly.push(*current);
            }
        }
    }
    simplify(poly)
}

/// Removes repeated and collinear vertices.
fn simplify(mut poly: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    const EPS: f64 = 1e-9;
    loop {
        let n = poly.len();
        if n < 3 {
            return poly;
        }
        let redundant = (0..n).find(|&i| {
            let (a, b, c) = (poly[(i + n - 1) % n], poly[i], poly[(i + 1) % n]);
            let cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
            let near = (b[0] - a[0]).abs() < EPS && (b[1] - a[1]).abs() < EPS;
            near || cross.abs() < EPS
        });
        match redundant {
            Some(i) => {
                poly.remove(i);
            }
            None => return poly,
        }
    }
}

fn edge_length(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Merges the shortest edge of a pentagon into its midpoint.
fn pentagon_to_quad(poly: &[[f64; 2]]) -> [[f64; 2]; 4] {
    let shortest = (0..5)
        .min_by(|&i, &j| {
            edge_length(poly[i], poly[(i + 1) % 5])
                .total_cmp(&edge_length(poly[j], poly[(j + 1) % 5]))
        })
        .unwrap_or(0);
    let (a, b) = (poly[shortest], poly[(shortest + 1) % 5]);
    let mid = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let mut quad = Vec::with_capacity(4);
    for (i, p) in poly.iter().enumerate() {
        if i == shortest {
            quad.push(mid);
        } else if i != (shortest + 1) % 5 {
            quad.push(*p);
        }
    }
    [quad[0], quad[1], quad[2], quad[3]]
}

/// Rotates the corner order so it best matches `reference` (least squared distance).
fn best_start(quad: [[f64; 2]; 4], reference: &[[f64; 2]; 4]) -> [[f64; 2]; 4] {
    let cost = |shift: usize| -> f64 {
        (0..4)
            .map(|i| {
                let (p, r) = (quad[(i + shift) % 4], reference[i]);
                (p[0] - r[0]).powi(2) + (p[1] - r[1]).powi(2)
            })
            .sum()
    };
    let shift = (0..4)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(0);
    std::array::from_fn(|i| quad[(i + shift) % 4])
}

/// Orients a polygon like `reference` (same sign of signed area).
fn same_orientation(mut poly: Vec<[f64; 2]>, reference: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let signed = |p: &[[f64; 2]]| -> f64 {
        (0..p.len())
            .map(|i| {
                let (a, b) = (p[i], p[(i + 1) % p.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum()
    };
    if signed(&poly) * signed(reference) < 0.0 {
        poly.reverse();
    }
    poly
}

/// The objects of a window in patch coordinates, per the rules in the module docs.
pub fn clip_objects(
    objects: &[DotaObject],
    window: &Window,
    options: &SplitOptions,
) -> Vec<DotaObject> {
    let (x0, y0) = (f64::from(window.x), f64::from(window.y));
    let (x1, y1) = (x0 + f64::from(window.width), y0 + f64::from(window.height));
    let shift = |p: [f64; 2]| [p[0] - x0, p[1] - y0];
    let mut out = Vec::new();
    for object in objects {
        let area = polygon_area(&object.poly).abs();
        if area <= 0.0 || !area.is_finite() {
            continue;
        }
        let clipped = clip_to_rect(&object.poly, x0, y0, x1, y1);
        let inside = if clipped.len() >= 3 {
            polygon_area(&clipped).abs()
        } else {
            0.0
        };
        let fraction = inside / area;
        if fraction <= 0.0 {
            continue;
        }
        if fraction >= 1.0 - 1e-9 {
            out.push(DotaObject {
                poly: object.poly.map(shift),
                ..object.clone()
            });
            continue;
        }
        let difficult = if fraction >= options.keep_threshold {
            object.difficult
        } else {
            match options.below_threshold {
                CutPolicy::MarkDifficult => 2,
                CutPolicy::Drop => continue,
            }
        };
        let clipped = same_orientation(clipped, &object.poly);
        let quad = match clipped.len() {
            4 => [clipped[0], clipped[1], clipped[2], clipped[3]],
            5 => pentagon_to_quad(&clipped),
            _ => continue,
        };
        out.push(DotaObject {
            poly: best_start(quad, &object.poly).map(shift),
            class: object.class.clone(),
            difficult,
        });
    }
    out
}

/// One patch of a split image.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Patch name (`<image>__1__<x>___<y>`).
    pub name: String,
    /// Where the patch lies in the image.
    pub window: Window,
    /// The patch pixels, `patch_size` square (padded where the image is smaller).
    pub image: Image,
    /// The objects of the patch, in patch coordinates.
    pub label: DotaLabel,
}

/// Splits one image and its annotation into patches.
pub fn split_image(
    image_id: &str,
    image: &Image,
    label: &DotaLabel,
    options: &SplitOptions,
) -> Vec<Patch> {
    split_windows(image.width, image.height, options)
        .into_iter()
        .map(|window| Patch {
            name: patch_name(image_id, &window),
            window,
            image: image.crop_padded(
                i64::from(window.x),
                i64::from(window.y),
                options.patch_size,
                options.patch_size,
                options.pad_value,
            ),
            label: DotaLabel {
                image_source: label.image_source.clone(),
                gsd: label.gsd.clone(),
                objects: clip_objects(&label.objects, &window, options),
            },
        })
        .collect()
}

/// Counts of a dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitSummary {
    /// Source images read.
    pub images: usize,
    /// Patches written.
    pub patches: usize,
    /// Objects written over all patches.
    pub objects: usize,
    /// Patches without objects left out.
    pub empty_dropped: usize,
}

/// Splits every image of `images_dir` (labels in `labels_dir`) into `out_dir/images/*.png`
/// and `out_dir/labelTxt/*.txt`; patches without objects are written only when `keep_empty`.
pub fn split_dataset(
    images_dir: &Path,
    labels_dir: &Path,
    out_dir: &Path,
    classes: ClassCheck<'_>,
    options: &SplitOptions,
    keep_empty: bool,
) -> DataResult<SplitSummary> {
    let mut summary = SplitSummary::default();
    for sample in read_split(images_dir, labels_dir, classes)? {
        let image = read_image(&sample.image)?;
        summary.images += 1;
        for patch in split_image(&sample.id, &image, &sample.label, options) {
            if patch.label.objects.is_empty() && !keep_empty {
                summary.empty_dropped += 1;
                continue;
            }
            write_png(
                &out_dir.join("images").join(format!("{}.png", patch.name)),
                &patch.image,
            )?;
            write_label(
                &out_dir.join("labelTxt").join(format!("{}.txt", patch.name)),
                &patch.label,
            )?;
            summary.patches += 1;
            summary.objects += patch.label.objects.len();
        }
    }
    Ok(summary)
}

/// Maps detections on patches (their `image` a patch name) back to their images and removes
/// duplicates per image and class with rotated NMS at `iou_thr`. A detection whose image is not
/// a patch name is an error. Output is grouped by image, then in descending score order.
pub fn merge_detections(
    detections: &[Task1Detection],
    iou_thr: f64,
) -> DataResult<Vec<Task1Detection>> {
    let mut by_image: BTreeMap<String, Vec<Task1Detection>> = BTreeMap::new();
    for det in detections {
        let (image, x, y) = parse_patch_name(&det.image).ok_or_else(|| {
            DataError::invalid(
                Path::new(&det.image),
                "not a patch name `<image>__<scale>__<x>___<y>`: were these detections made on split patches?",
            )
        })?;
        let (dx, dy) = (f64::from(x), f64::from(y));
        by_image
            .entry(image.clone())
            .or_default()
            .push(Task1Detection {
                image,
                class: det.class.clone(),
                score: det.score,
                poly: det.poly.map(|[px, py]| [px + dx, py + dy]),
            });
    }
    let mut merged = Vec::new();
    for dets in by_image.into_values() {
        let usable: Vec<(RotatedBox, &Task1Detection)> = dets
            .iter()
            .filter_map(|d| RotatedBox::from_polygon(&d.poly).map(|b| (b, d)))
            .collect();
        let mut class_ids: BTreeMap<&str, usize> = BTreeMap::new();
        let classes: Vec<usize> = usable
            .iter()
            .map(|(_, d)| {
                let next = class_ids.len();
                *class_ids.entry(d.class.as_str()).or_insert(next)
            })
            .collect();
        let boxes: Vec<RotatedBox> = usable.iter().map(|(b, _)| *b).collect();
        let scores: Vec<f64> = usable.iter().map(|(_, d)| d.score).collect();
        for keep in rotated_nms_per_class(&boxes, &scores, &classes, iou_thr) {
            merged.push(usable[keep].1.clone());
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(poly: [[f64; 2]; 4]) -> DotaObject {
        DotaObject {
            poly,
            class: "ship".into(),
            difficult: 0,
        }
    }

    #[test]
    fn starts_cover_the_side_and_end_at_the_border() {
        assert_eq!(window_starts(1111, 1024, 824), vec![0, 87]);
        assert_eq!(window_starts(1024, 1024, 824), vec![0]);
        assert_eq!(window_starts(500, 1024, 824), vec![0]);
        assert_eq!(window_starts(3000, 1024, 824), vec![0, 824, 1648, 1976]);
        assert_eq!(window_starts(1200, 512, 512), vec![0, 512, 688]);
        // A 6000 px Potsdam tile at 512 px every 384 px: 16 crops a side, the last flush.
        let potsdam = window_starts(6000, 512, 384);
        assert_eq!((potsdam.len(), potsdam[14], potsdam[15]), (16, 5376, 5488));
    }

    #[test]
    fn patch_names_round_trip() {
        let w = Window {
            x: 87,
            y: 158,
            width: 1024,
            height: 1024,
        };
        assert_eq!(patch_name("P0706", &w), "P0706__1__87___158");
        assert_eq!(
            parse_patch_name("P0706__1__87___158"),
            Some(("P0706".into(), 87, 158))
        );
        assert_eq!(
            parse_patch_name("P0706__1024__0___824"),
            Some(("P0706".into(), 0, 824))
        );
        assert_eq!(parse_patch_name("P0706"), None);
    }

    #[test]
    fn cut_objects_follow_the_threshold() {
        let window = Window {
            x: 0,
            y: 0,
            width: 100,
            height: 100,
        };
        let options = SplitOptions::default();
        // 80% inside: kept with its flag, clipped at x = 100.
        let mostly = object([[92.0, 10.0], [102.0, 10.0], [102.0, 20.0], [92.0, 20.0]]);
        // 20% inside: kept as difficult 2, or dropped.
        let barely = object([[98.0, 50.0], [108.0, 50.0], [108.0, 60.0], [98.0, 60.0]]);
        let outside = object([[120.0, 50.0], [130.0, 50.0], [130.0, 60.0], [120.0, 60.0]]);
        let kept = clip_objects(&[mostly, barely.clone(), outside], &window, &options);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].difficult, 0);
        assert_eq!(
            kept[0].poly,
            [[92.0, 10.0], [100.0, 10.0], [100.0, 20.0], [92.0, 20.0]]
        );
        assert_eq!(kept[1].difficult, 2);
        let drop = SplitOptions {
            below_threshold: CutPolicy::Drop,
            ..options
        };
        assert!(clip_objects(&[barely], &window, &drop).is_empty());
    }

    #[test]
    fn a_corner_cut_pentagon_becomes_a_quad() {
        let window = Window {
            x: 0,
            y: 0,
            width: 100,
            height: 100,
        };
        // A diamond whose right tip crosses x = 100: clipping gives a pentagon, 87.5% inside.
        let diamond = object([[85.0, 50.0], [95.0, 40.0], [105.0, 50.0], [95.0, 60.0]]);
        let clipped = clip_to_rect(&diamond.poly, 0.0, 0.0, 100.0, 100.0);
        assert_eq!(clipped.len(), 5);
        let kept = clip_objects(&[diamond], &window, &SplitOptions::default());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].difficult, 0);
        assert_eq!(kept[0].poly[0], [85.0, 50.0]);
        assert!(kept[0].poly.iter().all(|p| p[0] <= 100.0 + 1e-9));
    }
}
