//! Polygon area, exact convex intersection and IoU.
//!
//! Intersections are computed by Sutherland–Hodgman clipping in a local frame (the first
//! vertex of the first polygon is moved to the origin), so small polygons far from the
//! image origin keep their precision. Both polygons are brought to the same orientation
//! first, so the result does not depend on vertex order or start vertex. Polygons that are
//! not convex are split into a signed triangle fan and intersected triangle by triangle.
//! Degenerate input (fewer than three vertices, zero area, NaN or infinite coordinates)
//! gives an intersection of 0 and an IoU of 0; nothing here panics.

use super::rotated_box::RotatedBox;

/// An axis-aligned bounding box, used as a cheap prefilter before exact intersection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aabb {
    /// Smallest x and y.
    pub min: [f64; 2],
    /// Largest x and y.
    pub max: [f64; 2],
}

impl Aabb {
    /// The bounding box of `points` (inverted, i.e. empty, when there are none).
    pub fn of(points: &[[f64; 2]]) -> Aabb {
        let mut b = Aabb {
            min: [f64::INFINITY; 2],
            max: [f64::NEG_INFINITY; 2],
        };
        for &[x, y] in points {
            b.min = [b.min[0].min(x), b.min[1].min(y)];
            b.max = [b.max[0].max(x), b.max[1].max(y)];
        }
        b
    }

    /// Whether the two closed boxes share at least one point (touching counts; a box with
    /// NaN bounds overlaps nothing). Boxes that do not overlap have IoU 0.
    pub fn overlaps(&self, other: &Aabb) -> bool {
        self.min[0] <= other.max[0]
            && other.min[0] <= self.max[0]
            && self.min[1] <= other.max[1]
            && other.min[1] <= self.max[1]
    }
}

/// Unsigned polygon area (shoelace formula, then absolute value).
pub fn polygon_area(points: &[[f64; 2]]) -> f64 {
    signed_area(points).abs()
}

/// Area of the intersection of two simple polygons (exact up to f64 rounding; 0 for
/// degenerate or non-finite input).
pub fn polygon_intersection_area(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let mut scratch = ClipScratch::default();
    match (PreparedPolygon::new(a), PreparedPolygon::new(b)) {
        (Some(pa), Some(pb)) => pa.intersection_area(&pb, &mut scratch),
        _ => 0.0,
    }
}

/// Intersection over union of two simple polygons; 0 for degenerate or non-finite input.
pub fn polygon_iou(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let mut scratch = ClipScratch::default();
    match (PreparedPolygon::new(a), PreparedPolygon::new(b)) {
        (Some(pa), Some(pb)) => pa.iou(&pb, &mut scratch),
        _ => 0.0,
    }
}

/// Intersection over union of two rotated boxes.
pub fn box_iou(a: &RotatedBox, b: &RotatedBox) -> f64 {
    polygon_iou(&a.corners(), &b.corners())
}

/// Reusable buffers for clipping, so hot loops do not allocate.
#[derive(Debug, Default)]
pub(crate) struct ClipScratch {
    subject: Vec<[f64; 2]>,
    clipper: Vec<[f64; 2]>,
    out: Vec<[f64; 2]>,
}

/// A polygon checked once for finiteness, oriented counter-clockwise in the math sense
/// (positive shoelace sum), with its bounding box and convexity known.
#[derive(Debug, Clone)]
pub(crate) struct PreparedPolygon {
    points: Vec<[f64; 2]>,
    aabb: Aabb,
    convex: bool,
}

impl PreparedPolygon {
    /// `None` for fewer than three vertices, non-finite coordinates or zero area.
    pub(crate) fn new(points: &[[f64; 2]]) -> Option<Self> {
        if points.len() < 3 || points.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let area = signed_area(points);
        if area == 0.0 || !area.is_finite() {
            return None;
        }
        let mut pts = points.to_vec();
        if area < 0.0 {
            pts.reverse();
        }
        Some(Self {
            convex: is_convex(&pts),
            aabb: Aabb::of(&pts),
            points: pts,
        })
    }

    /// Intersection over union with `other`.
    pub(crate) fn iou(&self, other: &PreparedPolygon, scratch: &mut ClipScratch) -> f64 {
        if !self.aabb.overlaps(&other.aabb) {
            return 0.0;
        }
        let origin = self.points[0];
        let inter = self.intersection_in_frame(other, origin, scratch);
        let area_a = local_area(&self.points, origin);
        let area_b = local_area(&other.points, origin);
        let union = area_a + area_b - inter;
        if union.is_nan() || union <= 0.0 || !inter.is_finite() {
            return 0.0;
        }
        (inter / union).clamp(0.0, 1.0)
    }

    /// Area of the intersection with `other`.
    pub(crate) fn intersection_area(
        &self,
        other: &PreparedPolygon,
        scratch: &mut ClipScratch,
    ) -> f64 {
        if !self.aabb.overlaps(&other.aabb) {
            return 0.0;
        }
        self.intersection_in_frame(other, self.points[0], scratch)
    }

    fn intersection_in_frame(
        &self,
        other: &PreparedPolygon,
        origin: [f64; 2],
        scratch: &mut ClipScratch,
    ) -> f64 {
        if self.convex && other.convex {
            return convex_intersection(&self.points, &other.points, origin, scratch);
        }
        fan_intersection(&self.points, &other.points, origin, scratch)
    }
}

fn sub(p: [f64; 2], o: [f64; 2]) -> [f64; 2] {
    [p[0] - o[0], p[1] - o[1]]
}

fn cross(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

/// Shoelace sum / 2, taken relative to the first vertex for precision.
fn signed_area(points: &[[f64; 2]]) -> f64 {
    match points.first() {
        Some(&origin) => local_signed_area(points, origin),
        None => 0.0,
    }
}

fn local_area(points: &[[f64; 2]], origin: [f64; 2]) -> f64 {
    local_signed_area(points, origin).abs()
}

fn local_signed_area(points: &[[f64; 2]], origin: [f64; 2]) -> f64 {
    let next = points.iter().cycle().skip(1);
    let twice: f64 = points
        .iter()
        .zip(next)
        .map(|(&p, &q)| cross(sub(p, origin), sub(q, origin)))
        .sum();
    twice / 2.0
}

/// Whether a positively oriented polygon turns left (or goes straight) at every vertex.
fn is_convex(points: &[[f64; 2]]) -> bool {
    let n = points.len();
    (0..n).all(|i| {
        let (p0, p1, p2) = (points[i], points[(i + 1) % n], points[(i + 2) % n]);
        cross(sub(p1, p0), sub(p2, p1)) >= 0.0
    })
}

/// Clips convex `subject` by every edge of convex `clipper` (both positively oriented).
fn convex_intersection(
    subject: &[[f64; 2]],
    clipper: &[[f64; 2]],
    origin: [f64; 2],
    scratch: &mut ClipScratch,
) -> f64 {
    scratch.subject.clear();
    scratch
        .subject
        .extend(subject.iter().map(|&p| sub(p, origin)));
    scratch.clipper.clear();
    scratch
        .clipper
        .extend(clipper.iter().map(|&p| sub(p, origin)));
    clip_local(scratch)
}

/// Clips `scratch.subject` by the half-planes of `scratch.clipper`, returns the area.
fn clip_local(scratch: &mut ClipScratch) -> f64 {
    let n = scratch.clipper.len();
    for i in 0..n {
        let (e0, e1) = (scratch.clipper[i], scratch.clipper[(i + 1) % n]);
        if e0 == e1 {
            continue;
        }
        clip_half_plane(&scratch.subject, e0, e1, &mut scratch.out);
        std::mem::swap(&mut scratch.subject, &mut scratch.out);
        if scratch.subject.len() < 3 {
            return 0.0;
        }
    }
    local_signed_area(&scratch.subject, [0.0, 0.0]).max(0.0)
}

/// One Sutherland–Hodgman step: keeps the part of `input` left of the line `e0 → e1`.
fn clip_half_plane(input: &[[f64; 2]], e0: [f64; 2], e1: [f64; 2], out: &mut Vec<[f64; 2]>) {
    out.clear();
    let edge = sub(e1, e0);
    let side = |p: [f64; 2]| cross(edge, sub(p, e0));
    let Some(&last) = input.last() else {
        return;
    };
    let mut prev = last;
    let mut side_prev = side(prev);
    for &cur in input {
        let side_cur = side(cur);
        if (side_cur >= 0.0) != (side_prev >= 0.0) {
            let t = side_prev / (side_prev - side_cur);
            out.push([
                prev[0] + t * (cur[0] - prev[0]),
                prev[1] + t * (cur[1] - prev[1]),
            ]);
        }
        if side_cur >= 0.0 {
            out.push(cur);
        }
        prev = cur;
        side_prev = side_cur;
    }
}

/// Intersection of general simple polygons through signed triangle fans from the origin:
/// `|A ∩ B| = Σ_ij s_i s_j |T_i ∩ T_j|`, each triangle intersection being convex.
fn fan_intersection(
    a: &[[f64; 2]],
    b: &[[f64; 2]],
    origin: [f64; 2],
    scratch: &mut ClipScratch,
) -> f64 {
    let fan = |poly: &[[f64; 2]]| -> Vec<(f64, [[f64; 2]; 3])> {
        let n = poly.len();
        (0..n)
            .filter_map(|i| {
                let (p, q) = (sub(poly[i], origin), sub(poly[(i + 1) % n], origin));
                let s = cross(p, q);
                if s > 0.0 {
                    Some((1.0, [[0.0, 0.0], p, q]))
                } else if s < 0.0 {
                    Some((-1.0, [[0.0, 0.0], q, p]))
                } else {
                    None
                }
            })
            .collect()
    };
    let (fan_a, fan_b) = (fan(a), fan(b));
    let mut total = 0.0;
    for (sa, ta) in &fan_a {
        let box_a = Aabb::of(ta);
        for (sb, tb) in &fan_b {
            if !box_a.overlaps(&Aabb::of(tb)) {
                continue;
            }
            scratch.subject.clear();
            scratch.subject.extend_from_slice(ta);
            scratch.clipper.clear();
            scratch.clipper.extend_from_slice(tb);
            total += sa * sb * clip_local(scratch);
        }
    }
    total.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: [[f64; 2]; 4] = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];

    #[test]
    fn area_is_orientation_independent() {
        let mut rev = SQUARE;
        rev.reverse();
        assert_eq!(polygon_area(&SQUARE), 4.0);
        assert_eq!(polygon_area(&rev), 4.0);
    }

    #[test]
    fn overlapping_squares() {
        let shifted = SQUARE.map(|p| [p[0] + 1.0, p[1]]);
        assert_eq!(polygon_intersection_area(&SQUARE, &shifted), 2.0);
        assert!((polygon_iou(&SQUARE, &shifted) - 2.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn non_convex_polygons_use_the_fan() {
        // An L shape (area 3) against the unit square in its notch: no overlap.
        let l_shape = [
            [0.0, 0.0],
            [2.0, 0.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 2.0],
            [0.0, 2.0],
        ];
        let notch = [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]];
        assert!(polygon_intersection_area(&l_shape, &notch).abs() < 1e-15);
        assert!((polygon_intersection_area(&l_shape, &SQUARE) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_and_nan_give_zero() {
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [1.0, 1.0]];
        let nan = [[f64::NAN, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert_eq!(polygon_iou(&line, &SQUARE), 0.0);
        assert_eq!(polygon_iou(&nan, &SQUARE), 0.0);
        assert_eq!(polygon_iou(&[], &SQUARE), 0.0);
        assert_eq!(polygon_iou(&SQUARE[..2], &SQUARE), 0.0);
    }
}
