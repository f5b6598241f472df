//! Rotated IoU against `../shared/refdata/rotated_iou_public.json` (exact rational IoU).

use rsfm_model::geometry::{box_iou, polygon_iou, RotatedBox};
use serde_json::Value;

use crate::common::refdata_cases;

fn cases() -> Vec<Value> {
    refdata_cases("rotated_iou_public.json")
}

fn poly(v: &Value) -> Vec<[f64; 2]> {
    let n: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    n.chunks(2).map(|c| [c[0], c[1]]).collect()
}

fn rbox(v: &Value) -> Option<RotatedBox> {
    let n: Vec<f64> = v.as_array()?.iter().map(|x| x.as_f64().unwrap()).collect();
    Some(RotatedBox::new(n[0], n[1], n[2], n[3], n[4]))
}

#[test]
fn polygon_iou_matches_the_exact_value_for_every_pair() {
    let cases = cases();
    assert!(cases.len() >= 200);
    let mut failures = Vec::new();
    for c in &cases {
        let expected = c["expected_iou"].as_f64().unwrap();
        let tol = c["abs_tol"].as_f64().unwrap();
        let (p1, p2) = (poly(&c["poly1"]), poly(&c["poly2"]));
        for got in [polygon_iou(&p1, &p2), polygon_iou(&p2, &p1)] {
            if (got - expected).abs() > tol {
                failures.push(format!(
                    "{} ({}): got {got}, expected {expected} ± {tol}",
                    c["id"], c["category"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn box_iou_matches_the_exact_value_and_corners_match_the_polygons() {
    let mut checked = 0;
    for c in &cases() {
        let (Some(b1), Some(b2)) = (rbox(&c["box1"]), rbox(&c["box2"])) else {
            continue;
        };
        let expected = c["expected_iou"].as_f64().unwrap();
        let tol = c["abs_tol"].as_f64().unwrap();
        let got = box_iou(&b1, &b2);
        assert!(
            (got - expected).abs() <= tol,
            "{}: box IoU {got} vs {expected}",
            c["id"]
        );
        checked += 1;
        if c["category"] == "vertex_order" {
            // These polygons start at another vertex or run the other way on purpose.
            continue;
        }
        for (b, p) in [(b1, poly(&c["poly1"])), (b2, poly(&c["poly2"]))] {
            let scale = 1.0 + b.cx.abs().max(b.cy.abs()) + b.w.abs().max(b.h.abs());
            for (q, r) in b.corners().iter().zip(&p) {
                assert!(
                    (q[0] - r[0]).abs() <= 1e-12 * scale && (q[1] - r[1]).abs() <= 1e-12 * scale,
                    "{}: corner {q:?} vs {r:?}",
                    c["id"]
                );
            }
        }
    }
    assert!(checked > 150);
}

#[test]
fn min_area_rect_of_each_polygon_has_the_same_iou() {
    for c in &cases() {
        if c["box1"].is_null() {
            continue;
        }
        let (p1, p2) = (poly(&c["poly1"]), poly(&c["poly2"]));
        let (Some(r1), Some(r2)) = (RotatedBox::from_polygon(&p1), RotatedBox::from_polygon(&p2))
        else {
            panic!("{}: finite polygons have a min-area rectangle", c["id"]);
        };
        let expected = c["expected_iou"].as_f64().unwrap();
        let got = box_iou(&r1, &r2);
        // The rectangle is rebuilt from rounded corners: allow relative noise on top.
        let tol = c["abs_tol"].as_f64().unwrap().max(1e-7);
        assert!(
            (got - expected).abs() <= tol,
            "{}: {got} vs {expected}",
            c["id"]
        );
    }
}
