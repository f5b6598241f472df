//! The rotated box `(cx, cy, w, h, angle)` and its corners.

use std::f64::consts::{FRAC_PI_2, PI};

use serde::{Deserialize, Serialize};

/// Four corners of a quadrilateral, `[[x1, y1], …, [x4, y4]]`.
pub type Quad = [[f64; 2]; 4];

/// A rotated rectangle in image coordinates (y down), angle in radians.
///
/// This is MMRotate's `le90` box: corner k is `c + R(angle)·d_k` with
/// `R = [[cos, −sin], [sin, cos]]` and `d = (−w/2,−h/2), (w/2,−h/2), (w/2,h/2), (−w/2,h/2)`.
/// A positive angle turns the box clockwise on screen; at angle 0 the corners are
/// top-left, top-right, bottom-right, bottom-left, as in DOTA labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RotatedBox {
    /// Centre x.
    pub cx: f64,
    /// Centre y.
    pub cy: f64,
    /// Width, along the box's own x axis.
    pub w: f64,
    /// Height, along the box's own y axis.
    pub h: f64,
    /// Rotation in radians, clockwise on screen.
    pub angle: f64,
}

impl RotatedBox {
    /// A box from centre, size and angle (radians).
    pub fn new(cx: f64, cy: f64, w: f64, h: f64, angle: f64) -> Self {
        Self {
            cx,
            cy,
            w,
            h,
            angle,
        }
    }

    /// The four corners in the order TL, TR, BR, BL of the unrotated box.
    pub fn corners(&self) -> Quad {
        let (sin, cos) = self.angle.sin_cos();
        let (hw, hh) = (self.w / 2.0, self.h / 2.0);
        [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
            .map(|(dx, dy)| [self.cx + cos * dx - sin * dy, self.cy + sin * dx + cos * dy])
    }

    /// Area `w·h`.
    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The same rectangle in MMRotate's normalised `le90` form: `w ≥ h` and
    /// angle in `[−π/2, π/2)`; width and height are swapped (angle `+π/2`) as needed.
    pub fn normalized_le90(&self) -> RotatedBox {
        let (mut w, mut h, mut angle) = (self.w, self.h, self.angle);
        if w < h {
            std::mem::swap(&mut w, &mut h);
            angle += FRAC_PI_2;
        }
        // A rectangle is unchanged by a half turn, so the angle is taken modulo π.
        angle = (angle + FRAC_PI_2).rem_euclid(PI) - FRAC_PI_2;
        if angle >= FRAC_PI_2 {
            angle -= PI;
        }
        RotatedBox::new(self.cx, self.cy, w, h, angle)
    }

    /// The minimum-area rectangle that encloses `points` (like `cv2.minAreaRect`),
    /// normalised to `le90`. `None` for no points or non-finite coordinates; collinear
    /// points give a box of zero height.
    pub fn from_polygon(points: &[[f64; 2]]) -> Option<RotatedBox> {
        super::min_area_rect::min_area_rect(points).map(|b| b.normalized_le90())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_follow_the_clockwise_convention() {
        let b = RotatedBox::new(10.0, 20.0, 4.0, 2.0, 0.0);
        assert_eq!(
            b.corners(),
            [[8.0, 19.0], [12.0, 19.0], [12.0, 21.0], [8.0, 21.0]]
        );
        // A quarter turn clockwise on screen (y down) moves the TL corner to the top right.
        let r = RotatedBox::new(0.0, 0.0, 4.0, 2.0, FRAC_PI_2).corners();
        assert!((r[0][0] - 1.0).abs() < 1e-12 && (r[0][1] + 2.0).abs() < 1e-12);
    }

    #[test]
    fn le90_normalisation_keeps_the_rectangle() {
        for &(w, h, a) in &[
            (2.0, 5.0, 0.3),
            (5.0, 2.0, 3.5),
            (3.0, 1.0, -7.0),
            (1.0, 1.0, 1.6),
        ] {
            let b = RotatedBox::new(1.0, 2.0, w, h, a);
            let n = b.normalized_le90();
            assert!(n.w >= n.h);
            assert!((-FRAC_PI_2..FRAC_PI_2).contains(&n.angle), "{n:?}");
            assert!((crate::geometry::box_iou(&b, &n) - 1.0).abs() < 1e-12);
        }
    }
}
