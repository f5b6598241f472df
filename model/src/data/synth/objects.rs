//! Oriented objects for synthetic detection images: one distinct shape, colour, texture,
//! aspect ratio and size per class, placed without overlap at random angles and scales.

use std::f64::consts::{FRAC_PI_2, PI};

use super::raster::{ellipse, fill_polygon, to_u8};
use crate::data::image_io::Image;
use crate::geometry::RotatedBox;
use crate::rng::SplitMix64;

/// Outline family of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Rectangle,
    Ellipse,
    Plane,
    Ship,
    Diamond,
    Ring,
    Cross,
    Triangle,
}

const SHAPES: [Shape; 8] = [
    Shape::Rectangle,
    Shape::Plane,
    Shape::Ship,
    Shape::Ellipse,
    Shape::Diamond,
    Shape::Cross,
    Shape::Triangle,
    Shape::Ring,
];

/// Surface pattern of a class, in the object's own frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texture {
    Solid,
    Stripes,
    Checker,
    Dots,
}

const TEXTURES: [Texture; 4] = [
    Texture::Solid,
    Texture::Stripes,
    Texture::Checker,
    Texture::Dots,
];

/// How a class looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassStyle {
    shape: Shape,
    texture: Texture,
    colour: [f64; 3],
    /// Long side / short side.
    aspect: f64,
    /// Long side as a fraction of the image side.
    scale: f64,
}

fn hue_to_rgb(hue: f64, saturation: f64, value: f64) -> [f64; 3] {
    let h = hue.rem_euclid(1.0) * 6.0;
    let f = h - h.floor();
    let (p, q, t) = (
        value * (1.0 - saturation),
        value * (1.0 - saturation * f),
        value * (1.0 - saturation * (1.0 - f)),
    );
    let (r, g, b) = match h as u32 {
        0 => (value, t, p),
        1 => (q, value, p),
        2 => (p, value, t),
        3 => (p, q, value),
        4 => (t, p, value),
        _ => (value, p, q),
    };
    [r * 255.0, g * 255.0, b * 255.0]
}

/// The style of class `index` (distinct shape/texture pairs for the first 32 classes, distinct hues).
pub fn class_style(index: usize) -> ClassStyle {
    const ASPECTS: [f64; 5] = [1.3, 2.0, 2.8, 1.0, 1.6];
    ClassStyle {
        shape: SHAPES[index % SHAPES.len()],
        texture: TEXTURES[(index / SHAPES.len() + index) % TEXTURES.len()],
        colour: hue_to_rgb(
            index as f64 * 0.618_033_988_75,
            0.85,
            if index.is_multiple_of(2) { 0.95 } else { 0.75 },
        ),
        aspect: ASPECTS[index % ASPECTS.len()],
        scale: 0.07 + 0.02 * ((index * 3) % 4) as f64,
    }
}

/// An object placed in an image: its class and its oriented box (the label).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacedObject {
    /// Class index.
    pub class: usize,
    /// The oriented box; the drawn shape touches all four sides.
    pub rbox: RotatedBox,
}

/// Places `count` objects of random classes inside a `size`×`size` image without overlaps
/// (fewer when the image is too crowded).
pub fn place_objects(
    rng: &mut SplitMix64,
    size: u32,
    num_classes: usize,
    count: usize,
) -> Vec<PlacedObject> {
    let side = f64::from(size);
    let mut placed: Vec<(PlacedObject, f64)> = Vec::new();
    let mut attempts = 0;
    while placed.len() < count && attempts < count * 50 {
        attempts += 1;
        let class = rng.index_below(num_classes);
        let style = class_style(class);
        let long = (style.scale * side * rng.range(0.8, 1.25)).max(6.0);
        let short = (long / style.aspect).max(4.0);
        let radius = long.hypot(short) / 2.0;
        if 2.0 * radius + 4.0 >= side {
            continue;
        }
        let cx = rng.range(radius + 2.0, side - radius - 2.0);
        let cy = rng.range(radius + 2.0, side - radius - 2.0);
        let clear = placed
            .iter()
            .all(|(o, r)| (o.rbox.cx - cx).hypot(o.rbox.cy - cy) > r + radius + 2.0);
        if clear {
            let angle = rng.range(-FRAC_PI_2, FRAC_PI_2);
            let rbox = RotatedBox::new(cx, cy, long, short, angle);
            placed.push((PlacedObject { class, rbox }, radius));
        }
    }
    placed.into_iter().map(|(o, _)| o).collect()
}

/// Polygons in the box's unit frame ([-0.5, 0.5]², x along the long side).
type Outlines = Vec<Vec<[f64; 2]>>;

/// Parts of a shape; the second list is painted dark on top (holes, cockpits).
fn shape_parts(shape: Shape) -> (Outlines, Outlines) {
    let rect = |x0: f64, y0: f64, x1: f64, y1: f64| vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    match shape {
        Shape::Rectangle => (
            vec![rect(-0.5, -0.5, 0.5, 0.5)],
            vec![rect(-0.1, -0.5, 0.1, 0.5)],
        ),
        Shape::Ellipse => (vec![ellipse([0.0, 0.0], 0.5, 0.5, 0.0, 32)], vec![]),
        Shape::Ring => (
            vec![ellipse([0.0, 0.0], 0.5, 0.5, 0.0, 32)],
            vec![ellipse([0.0, 0.0], 0.25, 0.25, 0.0, 24)],
        ),
        Shape::Plane => (
            vec![
                rect(-0.5, -0.1, 0.5, 0.1),
                rect(-0.05, -0.5, 0.15, 0.5),
                rect(-0.5, -0.25, -0.38, 0.25),
            ],
            vec![],
        ),
        Shape::Ship => (
            vec![vec![
                [-0.5, -0.5],
                [0.2, -0.5],
                [0.5, 0.0],
                [0.2, 0.5],
                [-0.5, 0.5],
            ]],
            vec![rect(-0.3, -0.2, -0.05, 0.2)],
        ),
        Shape::Diamond => (
            vec![vec![[0.0, -0.5], [0.5, 0.0], [0.0, 0.5], [-0.5, 0.0]]],
            vec![],
        ),
        Shape::Cross => (
            vec![rect(-0.5, -0.15, 0.5, 0.15), rect(-0.15, -0.5, 0.15, 0.5)],
            vec![],
        ),
        Shape::Triangle => (vec![vec![[-0.5, -0.5], [0.5, 0.0], [-0.5, 0.5]]], vec![]),
    }
}

fn texture_shade(texture: Texture, u: f64, v: f64, period: f64) -> f64 {
    let cell = |t: f64| (t / period).floor() as i64;
    match texture {
        Texture::Solid => 1.0,
        Texture::Stripes => {
            if cell(u) % 2 == 0 {
                1.0
            } else {
                0.6
            }
        }
        Texture::Checker => {
            if (cell(u) + cell(v)) % 2 == 0 {
                1.0
            } else {
                0.55
            }
        }
        Texture::Dots => {
            let (fu, fv) = (
                (u / period).rem_euclid(1.0) - 0.5,
                (v / period).rem_euclid(1.0) - 0.5,
            );
            if fu.hypot(fv) < 0.3 {
                0.5
            } else {
                1.0
            }
        }
    }
}

/// Draws an object into the first three channels of `image`.
pub fn draw_object(image: &mut Image, object: &PlacedObject, rng: &mut SplitMix64) {
    let style = class_style(object.class);
    let RotatedBox {
        cx,
        cy,
        w,
        h,
        angle,
    } = object.rbox;
    let (sin, cos) = angle.sin_cos();
    let to_image = |p: &[f64; 2]| {
        let (dx, dy) = (p[0] * w, p[1] * h);
        [cx + cos * dx - sin * dy, cy + sin * dx + cos * dy]
    };
    let (parts, dark) = shape_parts(style.shape);
    let period = (h / 3.0).max(2.0);
    let (width, height, channels) = (image.width, image.height, image.channels as usize);
    let shade_jitter = rng.range(0.9, 1.1);
    for (polygons, darkness) in [(parts, 1.0), (dark, 0.35)] {
        for polygon in polygons {
            let outline: Vec<[f64; 2]> = polygon.iter().map(to_image).collect();
            fill_polygon(width, height, &outline, |x, y| {
                let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
                let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                let shade = texture_shade(style.texture, u, v, period) * darkness * shade_jitter;
                let start = (y as usize * width as usize + x as usize) * channels;
                for c in 0..3.min(channels) {
                    image.data[start + c] = to_u8(style.colour[c] * shade + rng.range(-8.0, 8.0));
                }
            });
        }
    }
}

/// The label polygon of an object, rounded to 1/100 pixel.
pub fn label_polygon(object: &PlacedObject) -> [[f64; 2]; 4] {
    object
        .rbox
        .corners()
        .map(|p| p.map(|v| (v * 100.0).round() / 100.0))
}

/// The box angle in degrees (rounded to 1/100), as DIOR-R's `<angle>` field.
pub fn angle_degrees(object: &PlacedObject) -> f64 {
    (object.rbox.angle * 180.0 / PI * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_differ_per_class() {
        for a in 0..20 {
            for b in (a + 1)..20 {
                let (sa, sb) = (class_style(a), class_style(b));
                assert!(sa.shape != sb.shape || sa.texture != sb.texture, "{a} {b}");
            }
        }
    }

    #[test]
    fn placed_objects_are_inside_and_apart() {
        let mut rng = SplitMix64::from_state(5);
        let objects = place_objects(&mut rng, 256, 18, 10);
        assert!(objects.len() >= 5);
        for o in &objects {
            assert!(o
                .rbox
                .corners()
                .iter()
                .all(|p| p.iter().all(|v| (0.0..=256.0).contains(v))));
        }
    }
}
