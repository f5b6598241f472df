//! Box representations and their regression codings.
//!
//! - **Midpoint offsets** (Oriented R-CNN's RPN): an oriented box is its outer horizontal box
//!   `(x, y, w, h)` plus `Δα`, the offset from the centre of the vertex on the top edge along x,
//!   and `Δβ`, the offset of the vertex on the right edge along y. Deltas against a horizontal
//!   anchor are `((x−ax)/aw, (y−ay)/ah, ln(w/aw), ln(h/ah), Δα/w, Δβ/h)`. Decoding gives a
//!   parallelogram, which is made a rectangle by stretching its shorter diagonal.
//! - **Rotated deltas** (RoI head): `(dx, dy)` in the proposal's own frame over its size,
//!   `ln` size ratios and the angle difference in `[−π/2, π/2)`; the target's width and height
//!   are swapped when that gives the smaller turn.
//!
//! Tensors of boxes are `[N, 5]` `(cx, cy, w, h, angle)` in the `le90` convention of
//! [`RotatedBox`]; horizontal boxes are `[N, 4]` `(x1, y1, x2, y2)`.

use std::f64::consts::{FRAC_PI_2, PI};

use tch::{Kind, Tensor};

use crate::geometry::RotatedBox;

/// Standard deviations the RPN's midpoint-offset deltas are divided by.
pub const RPN_STDS: [f64; 6] = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5];
/// Standard deviations the RoI head's rotated deltas are divided by.
pub const ROI_STDS: [f64; 5] = [0.1, 0.1, 0.2, 0.2, 0.1];
/// Largest |log size ratio| decoded, as in MMDetection (`ln(1000/16)`).
const MAX_LOG_RATIO: f64 = 4.135_166_556_742_356;

/// The midpoint-offset form `(x, y, w, h, Δα, Δβ)` of a rotated box.
pub fn midpoint_form(b: &RotatedBox) -> [f64; 6] {
    let corners = b.corners();
    let xs = corners.map(|c| c[0]);
    let ys = corners.map(|c| c[1]);
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = (
        ys.iter().copied().fold(f64::INFINITY, f64::min),
        ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let tolerance = 1e-9 * (b.w + b.h).max(1.0);
    // The top vertex: smallest y, the rightmost of a tie (an upright box's top-right corner).
    let top = (0..4)
        .min_by(|&i, &j| {
            let (yi, yj) = (ys[i], ys[j]);
            if (yi - yj).abs() <= tolerance {
                xs[j].total_cmp(&xs[i])
            } else {
                yi.total_cmp(&yj)
            }
        })
        .unwrap_or(0);
    // Corners run clockwise on screen, so the next one is on the right edge.
    let right = (top + 1) % 4;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    [cx, cy, x1 - x0, y1 - y0, xs[top] - cx, ys[right] - cy]
}

fn column(t: &Tensor, i: i64) -> Tensor {
    t.select(1, i)
}

fn stds(values: &[f64], like: &Tensor) -> Tensor {
    Tensor::from_slice(values)
        .to_kind(Kind::Float)
        .to_device(like.device())
}

/// Midpoint-offset deltas of `targets` `[N, 6]` (see [`midpoint_form`]) against horizontal
/// `anchors` `[N, 4]`, divided by [`RPN_STDS`].
pub fn encode_midpoint(anchors: &Tensor, targets: &Tensor) -> Tensor {
    let (ax, ay, aw, ah) = anchor_centres(anchors);
    let (w, h) = (column(targets, 2), column(targets, 3));
    let deltas = Tensor::stack(
        &[
            (column(targets, 0) - &ax) / &aw,
            (column(targets, 1) - &ay) / &ah,
            (&w / &aw).log(),
            (&h / &ah).log(),
            column(targets, 4) / &w,
            column(targets, 5) / &h,
        ],
        1,
    );
    deltas / stds(&RPN_STDS, anchors)
}

fn anchor_centres(anchors: &Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
    let (x1, y1, x2, y2) = (
        column(anchors, 0),
        column(anchors, 1),
        column(anchors, 2),
        column(anchors, 3),
    );
    ((&x1 + &x2) * 0.5, (&y1 + &y2) * 0.5, x2 - x1, y2 - y1)
}

/// Rotated boxes `[N, 5]` (normalised `le90`) from midpoint-offset `deltas` `[N, 6]` against
/// horizontal `anchors` `[N, 4]`.
pub fn decode_midpoint(anchors: &Tensor, deltas: &Tensor) -> Tensor {
    let (ax, ay, aw, ah) = anchor_centres(anchors);
    let d = deltas * stds(&RPN_STDS, anchors);
    let x = &ax + column(&d, 0) * &aw;
    let y = &ay + column(&d, 1) * &ah;
    let w = &aw * column(&d, 2).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp();
    let h = &ah * column(&d, 3).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp();
    let alpha = column(&d, 4) * &w;
    let beta = column(&d, 5) * &h;
    // Diagonals of the parallelogram: top vertex to bottom, right vertex to left.
    let d1 = Tensor::stack(&[&alpha * -2.0, h.shallow_clone()], 1);
    let d2 = Tensor::stack(&[-&w, &beta * -2.0], 1);
    let (l1, l2) = (
        d1.norm_scalaropt_dim(2, [1], true).clamp_min(1e-6),
        d2.norm_scalaropt_dim(2, [1], true).clamp_min(1e-6),
    );
    let longest = l1.maximum(&l2);
    let d1 = d1 * (&longest / l1);
    let d2 = d2 * (&longest / l2);
    // Rectangle corners c − d1/2, c − d2/2, c + d1/2, c + d2/2: edges (d1 − d2)/2, (d1 + d2)/2.
    let e1 = (&d1 - &d2) * 0.5;
    let e2 = (&d1 + &d2) * 0.5;
    let width = e1.norm_scalaropt_dim(2, [1], false);
    let height = e2.norm_scalaropt_dim(2, [1], false);
    let angle = column(&e1, 1).atan2(&column(&e1, 0));
    normalize_le90(&Tensor::stack(&[x, y, width, height, angle], 1))
}

/// `angle` reduced to `[−π/2, π/2)`.
pub fn wrap_half_turn(angle: &Tensor) -> Tensor {
    (angle + FRAC_PI_2).remainder(PI) - FRAC_PI_2
}

/// Boxes `[N, 5]` in the normalised `le90` form of [`RotatedBox::normalized_le90`]
/// (`w ≥ h`, angle in `[−π/2, π/2)`).
pub fn normalize_le90(boxes: &Tensor) -> Tensor {
    let (w, h, a) = (column(boxes, 2), column(boxes, 3), column(boxes, 4));
    let swap = w.lt_tensor(&h);
    let new_w = w.where_self(&swap.logical_not(), &h);
    let new_h = h.where_self(&swap.logical_not(), &w);
    let turned = a.where_self(&swap.logical_not(), &(&a + FRAC_PI_2));
    Tensor::stack(
        &[
            column(boxes, 0),
            column(boxes, 1),
            new_w,
            new_h,
            wrap_half_turn(&turned),
        ],
        1,
    )
}

/// Rotated deltas of `targets` against `proposals` (both `[N, 5]`), divided by [`ROI_STDS`].
pub fn encode_deltas(proposals: &Tensor, targets: &Tensor) -> Tensor {
    let (px, py, pw, ph, pa) = split5(proposals);
    let (gx, gy, gw, gh, ga) = split5(targets);
    let (sin, cos) = (pa.sin(), pa.cos());
    let (ddx, ddy) = (gx - &px, gy - &py);
    let dx = (&cos * &ddx + &sin * &ddy) / &pw;
    let dy = (-&sin * &ddx + &cos * &ddy) / &ph;
    let straight = wrap_half_turn(&(&ga - &pa));
    let swapped = wrap_half_turn(&(&ga + FRAC_PI_2 - &pa));
    let keep = straight.abs().le_tensor(&swapped.abs());
    let da = straight.where_self(&keep, &swapped);
    let tw = gw.where_self(&keep, &gh);
    let th = gh.where_self(&keep, &gw);
    let deltas = Tensor::stack(&[dx, dy, (tw / pw).log(), (th / ph).log(), da], 1);
    deltas / stds(&ROI_STDS, proposals)
}

/// Boxes `[N, 5]` (normalised `le90`) from rotated `deltas` against `proposals`.
pub fn decode_deltas(proposals: &Tensor, deltas: &Tensor) -> Tensor {
    let (px, py, pw, ph, pa) = split5(proposals);
    let d = deltas * stds(&ROI_STDS, proposals);
    let (dx, dy) = (column(&d, 0) * &pw, column(&d, 1) * &ph);
    let (sin, cos) = (pa.sin(), pa.cos());
    let x = px + &dx * &cos - &dy * &sin;
    let y = py + &dx * &sin + &dy * &cos;
    let w = pw * column(&d, 2).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp();
    let h = ph * column(&d, 3).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp();
    let a = pa + column(&d, 4);
    normalize_le90(&Tensor::stack(&[x, y, w, h, a], 1))
}

fn split5(t: &Tensor) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    (
        column(t, 0),
        column(t, 1),
        column(t, 2),
        column(t, 3),
        column(t, 4),
    )
}

/// Rotated boxes as a `[N, 5]` float tensor.
pub fn boxes_to_tensor(boxes: &[RotatedBox]) -> Tensor {
    let flat: Vec<f32> = boxes
        .iter()
        .flat_map(|b| [b.cx, b.cy, b.w, b.h, b.angle].map(|v| v as f32))
        .collect();
    Tensor::from_slice(&flat).reshape([boxes.len() as i64, 5])
}

/// Rotated boxes from a `[N, 5]` tensor.
pub fn tensor_to_boxes(t: &Tensor) -> Vec<RotatedBox> {
    let flat = Vec::<f32>::try_from(
        t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1]),
    )
    .unwrap_or_default();
    flat.chunks_exact(5)
        .map(|c| {
            RotatedBox::new(
                c[0].into(),
                c[1].into(),
                c[2].into(),
                c[3].into(),
                c[4].into(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::box_iou;

    fn sample_boxes() -> Vec<RotatedBox> {
        vec![
            RotatedBox::new(50.0, 40.0, 30.0, 10.0, 0.3),
            RotatedBox::new(20.0, 70.0, 12.0, 8.0, -1.2),
            RotatedBox::new(64.0, 64.0, 40.0, 20.0, 0.0),
            RotatedBox::new(10.0, 15.0, 25.0, 24.0, 1.5),
            RotatedBox::new(80.0, 30.0, 16.0, 16.0, -0.7),
        ]
    }

    #[test]
    fn midpoint_offsets_round_trip() {
        let boxes = sample_boxes();
        let forms: Vec<f32> = boxes
            .iter()
            .flat_map(|b| midpoint_form(b).map(|v| v as f32))
            .collect();
        let targets = Tensor::from_slice(&forms).reshape([boxes.len() as i64, 6]);
        let anchors = Tensor::from_slice(&[
            40.0f32, 30.0, 64.0, 50.0, 10.0, 60.0, 30.0, 80.0, 40.0, 40.0, 90.0, 90.0, 0.0, 0.0,
            32.0, 32.0, 70.0, 20.0, 90.0, 40.0,
        ])
        .reshape([5, 4]);
        let decoded = tensor_to_boxes(&decode_midpoint(
            &anchors,
            &encode_midpoint(&anchors, &targets),
        ));
        for (b, d) in boxes.iter().zip(&decoded) {
            assert!(box_iou(b, d) > 0.999, "{b:?} came back as {d:?}");
            let n = b.normalized_le90();
            assert!(
                (n.cx - d.cx).abs() < 1e-3 && (n.w - d.w).abs() < 1e-3,
                "{n:?} vs {d:?}"
            );
        }
    }

    #[test]
    fn midpoint_form_of_an_upright_box_names_its_top_right_corner() {
        let m = midpoint_form(&RotatedBox::new(10.0, 20.0, 8.0, 4.0, 0.0));
        assert_eq!(m, [10.0, 20.0, 8.0, 4.0, 4.0, 2.0]);
    }

    #[test]
    fn rotated_deltas_round_trip_and_take_the_short_turn() {
        let gts = sample_boxes();
        let proposals: Vec<RotatedBox> = gts
            .iter()
            .map(|b| RotatedBox::new(b.cx + 3.0, b.cy - 2.0, b.h + 5.0, b.w * 0.8, b.angle + 1.4))
            .map(|b| b.normalized_le90())
            .collect();
        let (p, g) = (boxes_to_tensor(&proposals), boxes_to_tensor(&gts));
        let deltas = encode_deltas(&p, &g);
        let angles = Vec::<f32>::try_from(deltas.select(1, 4).contiguous()).unwrap();
        assert!(angles
            .iter()
            .all(|a| (a * ROI_STDS[4] as f32).abs() <= FRAC_PI_4_F32 + 1e-5));
        let decoded = tensor_to_boxes(&decode_deltas(&p, &deltas));
        for (b, d) in gts.iter().zip(&decoded) {
            assert!(box_iou(b, d) > 0.999, "{b:?} came back as {d:?}");
        }
    }

    const FRAC_PI_4_F32: f32 = std::f32::consts::FRAC_PI_4;

    #[test]
    fn tensor_normalisation_matches_the_geometry_module() {
        let boxes = vec![
            RotatedBox::new(1.0, 2.0, 2.0, 5.0, 0.3),
            RotatedBox::new(1.0, 2.0, 5.0, 2.0, 3.5),
            RotatedBox::new(1.0, 2.0, 3.0, 1.0, -7.0),
        ];
        let got = tensor_to_boxes(&normalize_le90(&boxes_to_tensor(&boxes)));
        for (b, g) in boxes.iter().zip(&got) {
            let n = b.normalized_le90();
            assert!(
                (n.w - g.w).abs() < 1e-5 && (n.angle - g.angle).abs() < 1e-5,
                "{n:?} {g:?}"
            );
        }
    }
}
