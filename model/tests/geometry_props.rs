//! Property tests of rotated IoU and NMS.

use proptest::prelude::*;
use rsfm_model::geometry::{box_iou, polygon_iou, rotated_nms, RotatedBox};

fn any_box() -> impl Strategy<Value = RotatedBox> {
    (
        -500.0..500.0f64,
        -500.0..500.0f64,
        0.5..200.0f64,
        0.5..200.0f64,
        -4.0..4.0f64,
    )
        .prop_map(|(cx, cy, w, h, a)| RotatedBox::new(cx, cy, w, h, a))
}

/// Rotates a point about the origin by `t` and then translates it by `(dx, dy)`.
fn moved(p: [f64; 2], t: f64, dx: f64, dy: f64) -> [f64; 2] {
    let (s, c) = t.sin_cos();
    [c * p[0] - s * p[1] + dx, s * p[0] + c * p[1] + dy]
}

proptest! {
    #[test]
    fn iou_is_symmetric_and_bounded(a in any_box(), b in any_box()) {
        let ab = box_iou(&a, &b);
        let ba = box_iou(&b, &a);
        prop_assert!((0.0..=1.0).contains(&ab));
        prop_assert!((ab - ba).abs() < 1e-9, "{ab} vs {ba}");
    }

    #[test]
    fn identical_boxes_have_iou_one(a in any_box()) {
        prop_assert!((box_iou(&a, &a) - 1.0).abs() < 1e-12);
        let same = RotatedBox::new(a.cx, a.cy, a.h, a.w, a.angle + std::f64::consts::FRAC_PI_2);
        prop_assert!((box_iou(&a, &same) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn iou_is_invariant_under_a_joint_rigid_motion(
        a in any_box(), b in any_box(), t in -4.0..4.0f64, dx in -1000.0..1000.0f64, dy in -1000.0..1000.0f64
    ) {
        let before = box_iou(&a, &b);
        let pa: Vec<[f64; 2]> = a.corners().iter().map(|&p| moved(p, t, dx, dy)).collect();
        let pb: Vec<[f64; 2]> = b.corners().iter().map(|&p| moved(p, t, dx, dy)).collect();
        let after = polygon_iou(&pa, &pb);
        prop_assert!((before - after).abs() < 1e-9, "{before} vs {after}");
    }

    #[test]
    fn iou_does_not_depend_on_vertex_order(a in any_box(), b in any_box(), shift in 0usize..4) {
        let mut pa = a.corners().to_vec();
        pa.rotate_left(shift);
        pa.reverse();
        prop_assert!((polygon_iou(&pa, &b.corners()) - box_iou(&a, &b)).abs() < 1e-12);
    }

    #[test]
    fn nms_keeps_the_best_box_and_never_panics(boxes in prop::collection::vec(any_box(), 0..30)) {
        let scores: Vec<f64> = (0..boxes.len()).map(|i| (i * 37 % 11) as f64).collect();
        let keep = rotated_nms(&boxes, &scores, 0.3);
        if !boxes.is_empty() {
            let best = scores.iter().cloned().fold(f64::MIN, f64::max);
            prop_assert_eq!(scores[keep[0]], best);
        }
        for (i, &k) in keep.iter().enumerate() {
            for &j in &keep[i + 1..] {
                prop_assert!(box_iou(&boxes[k], &boxes[j]) <= 0.3);
            }
        }
    }
}

#[test]
fn degenerate_boxes_never_panic_and_score_zero() {
    let unit = RotatedBox::new(0.0, 0.0, 1.0, 1.0, 0.0);
    for bad in [
        RotatedBox::new(0.0, 0.0, 0.0, 1.0, 0.0),
        RotatedBox::new(0.0, 0.0, 0.0, 0.0, 0.0),
        RotatedBox::new(f64::NAN, 0.0, 1.0, 1.0, 0.0),
        RotatedBox::new(0.0, 0.0, f64::INFINITY, 1.0, 0.0),
        RotatedBox::new(0.0, 0.0, 1.0, 1.0, f64::NAN),
    ] {
        assert_eq!(box_iou(&bad, &unit), 0.0);
        assert_eq!(box_iou(&unit, &bad), 0.0);
        assert_eq!(rotated_nms(&[bad, unit], &[1.0, 0.5], 0.5), vec![0, 1]);
    }
    assert!(RotatedBox::from_polygon(&[[f64::NAN, 0.0]; 4]).is_none());
}
