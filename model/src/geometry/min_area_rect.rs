//! Minimum-area enclosing rectangle (rotating calipers over the convex hull).

use super::rotated_box::RotatedBox;

/// The smallest rectangle enclosing `points`, with its width along the hull edge that
/// realises the minimum. `None` for no points or non-finite coordinates.
pub(super) fn min_area_rect(points: &[[f64; 2]]) -> Option<RotatedBox> {
    if points.is_empty() || points.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let hull = convex_hull(points);
    let origin = hull[0];
    if hull.len() == 1 {
        return Some(RotatedBox::new(origin[0], origin[1], 0.0, 0.0, 0.0));
    }
    let mut best: Option<(f64, RotatedBox)> = None;
    for i in 0..hull.len() {
        let (p, q) = (hull[i], hull[(i + 1) % hull.len()]);
        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
        let len = dx.hypot(dy);
        if len == 0.0 {
            continue;
        }
        let u = [dx / len, dy / len];
        let v = [-u[1], u[0]];
        let (mut lo_u, mut hi_u, mut lo_v, mut hi_v) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for h in &hull {
            let r = [h[0] - origin[0], h[1] - origin[1]];
            let (pu, pv) = (r[0] * u[0] + r[1] * u[1], r[0] * v[0] + r[1] * v[1]);
            lo_u = lo_u.min(pu);
            hi_u = hi_u.max(pu);
            lo_v = lo_v.min(pv);
            hi_v = hi_v.max(pv);
        }
        let (w, h) = (hi_u - lo_u, hi_v - lo_v);
        let area = w * h;
        if best.as_ref().is_some_and(|(a, _)| *a <= area) {
            continue;
        }
        let (mu, mv) = ((lo_u + hi_u) / 2.0, (lo_v + hi_v) / 2.0);
        let cx = origin[0] + mu * u[0] + mv * v[0];
        let cy = origin[1] + mu * u[1] + mv * v[1];
        best = Some((area, RotatedBox::new(cx, cy, w, h, u[1].atan2(u[0]))));
    }
    best.map(|(_, b)| b)
}

/// Andrew's monotone chain; collinear points are dropped. Returns at least one point for
/// non-empty input.
fn convex_hull(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower = half_hull(pts.iter());
    let mut upper = half_hull(pts.iter().rev());
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// One chain of the monotone-chain hull: keeps only strict left turns.
fn half_hull<'a>(points: impl Iterator<Item = &'a [f64; 2]>) -> Vec<[f64; 2]> {
    let turn = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut chain: Vec<[f64; 2]> = Vec::new();
    for &p in points {
        while chain.len() >= 2 && turn(chain[chain.len() - 2], chain[chain.len() - 1], p) <= 0.0 {
            chain.pop();
        }
        chain.push(p);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_rotated_rectangle() {
        let b = RotatedBox::new(50.0, 40.0, 30.0, 10.0, 0.4);
        let r = RotatedBox::from_polygon(&b.corners()).unwrap();
        assert!((r.cx - 50.0).abs() < 1e-9 && (r.cy - 40.0).abs() < 1e-9);
        assert!((r.w - 30.0).abs() < 1e-9 && (r.h - 10.0).abs() < 1e-9);
        assert!((r.angle - 0.4).abs() < 1e-12);
    }

    #[test]
    fn encloses_a_general_quad() {
        let quad = [[0.0, 0.0], [4.0, 1.0], [5.0, 4.0], [1.0, 3.0]];
        let r = RotatedBox::from_polygon(&quad).unwrap();
        let inter = crate::geometry::polygon_intersection_area(&r.corners(), &quad);
        assert!((inter - crate::geometry::polygon_area(&quad)).abs() < 1e-9);
    }

    #[test]
    fn degenerate_input() {
        assert!(RotatedBox::from_polygon(&[]).is_none());
        assert!(RotatedBox::from_polygon(&[[f64::NAN, 1.0]]).is_none());
        let line = RotatedBox::from_polygon(&[[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]]).unwrap();
        assert_eq!(line.h, 0.0);
    }
}
