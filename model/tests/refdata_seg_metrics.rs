//! Segmentation metrics against `../shared/refdata/seg_metrics_cases_public.json`
//! (exact f64 values, MMSeg semantics, both Potsdam conventions, LoveDA's reduce_zero_label).

use rsfm_model::metrics::segmentation::{reduce_zero_label, ConfusionMatrix, SegReport};
use serde_json::Value;

use crate::common::refdata_cases;

const TOL: f64 = 1e-9;
const CLUTTER: usize = 5;

fn cases() -> Vec<Value> {
    refdata_cases("seg_metrics_cases_public.json")
}

fn flat(map: &Value) -> Vec<u8> {
    map.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u8)
        })
        .collect()
}

fn numbers(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn close(got: f64, expected: Option<f64>) -> bool {
    match expected {
        None => got.is_nan(),
        Some(e) => (got - e).abs() <= TOL,
    }
}

struct Checker {
    failures: Vec<String>,
}

impl Checker {
    fn scalar(&mut self, label: &str, got: f64, expected: &Value) {
        if !close(got, expected.as_f64()) {
            self.failures.push(format!("{label}: {got} vs {expected}"));
        }
    }

    fn vector(&mut self, label: &str, got: &[f64], expected: &Value) {
        let expected = numbers(expected);
        if got.len() != expected.len() || !got.iter().zip(&expected).all(|(g, e)| close(*g, *e)) {
            self.failures
                .push(format!("{label}: {got:?} vs {expected:?}"));
        }
    }
}

/// Accumulates every image of `case`, mapping gt through `gt_map` first.
fn matrix(case: &Value, classes: usize, ignore: u8, gt_map: impl Fn(u8) -> u8) -> ConfusionMatrix {
    let mut cm = ConfusionMatrix::new(classes).unwrap();
    for image in case["images"].as_array().unwrap() {
        let gt: Vec<u8> = flat(&image["gt"]).into_iter().map(&gt_map).collect();
        cm.accumulate(&flat(&image["pred"]), &gt, Some(ignore))
            .unwrap();
    }
    cm
}

fn check_report(c: &mut Checker, id: &str, r: &SegReport, e: &Value) {
    let per = &e["per_class"];
    c.vector(&format!("{id} IoU"), &r.iou, &per["IoU"]);
    c.vector(&format!("{id} Precision"), &r.precision, &per["Precision"]);
    c.vector(&format!("{id} Recall"), &r.recall, &per["Recall"]);
    c.vector(&format!("{id} Fscore"), &r.fscore, &per["Fscore"]);
    c.vector(
        &format!("{id} F1_standard"),
        &r.f1_standard,
        &per["F1_standard"],
    );
    c.scalar(&format!("{id} aAcc"), r.oa, &e["aAcc"]);
    c.scalar(&format!("{id} mIoU"), r.miou, &e["mIoU"]);
    c.scalar(&format!("{id} mFscore"), r.mf1, &e["mFscore"]);
    c.scalar(
        &format!("{id} mF1_standard"),
        r.mf1_standard,
        &e["mF1_standard"],
    );
    c.scalar(&format!("{id} mPrecision"), r.mprecision, &e["mPrecision"]);
    c.scalar(&format!("{id} mRecall"), r.mrecall, &e["mRecall"]);
}

#[test]
fn mmseg_semantics_match_the_exact_values() {
    let cases = cases();
    assert!(cases.len() >= 25);
    let mut c = Checker {
        failures: Vec::new(),
    };
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let classes = case["num_classes"].as_u64().unwrap() as usize;
        let ignore = case["ignore_index"].as_u64().unwrap() as u8;
        let e = &case["expected"];
        let cm = matrix(case, classes, ignore, |g| g);
        let cells: Vec<u64> = (0..classes)
            .flat_map(|g| (0..classes).map(move |p| (g, p)))
            .map(|(g, p)| cm.get(g, p))
            .collect();
        let expected_cells: Vec<u64> = e["confusion_matrix"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(counts)
            .collect();
        assert_eq!(cells, expected_cells, "{id} confusion matrix");
        assert_eq!(cm.area_intersect(), counts(&e["area_intersect"]), "{id}");
        assert_eq!(cm.area_pred(), counts(&e["area_pred_label"]), "{id}");
        assert_eq!(cm.area_label(), counts(&e["area_label"]), "{id}");
        check_report(&mut c, id, &cm.report(&[]), e);
    }
    assert!(c.failures.is_empty(), "{}", c.failures.join("\n"));
}

#[test]
fn potsdam_conventions_match() {
    let mut c = Checker {
        failures: Vec::new(),
    };
    let mut seen = 0;
    for case in &cases() {
        let e = &case["expected"];
        if e["potsdam_geoseg"].is_null() {
            continue;
        }
        seen += 1;
        let id = case["id"].as_str().unwrap();
        // GeoSeg: 6 classes, clutter out of the means, in OA.
        let g = &e["potsdam_geoseg"];
        let geoseg = matrix(case, 6, 255, |v| v).report(&[CLUTTER]);
        c.vector(&format!("{id} geoseg IoU"), &geoseg.iou, &g["IoU"]);
        c.vector(&format!("{id} geoseg F1"), &geoseg.fscore, &g["F1"]);
        c.scalar(
            &format!("{id} geoseg mIoU"),
            geoseg.miou,
            &g["mIoU_excl_clutter"],
        );
        c.scalar(
            &format!("{id} geoseg mF1"),
            geoseg.mf1,
            &g["mF1_excl_clutter"],
        );
        c.scalar(&format!("{id} geoseg OA"), geoseg.oa, &g["OA"]);
        // RSP/RVSA: clutter ground truth ignored altogether, 5 classes.
        let r = &e["potsdam_rsp_clutter_ignored"];
        let cm = matrix(
            case,
            5,
            255,
            |v| if v as usize == CLUTTER { 255 } else { v },
        );
        assert_eq!(cm.area_pred(), counts(&r["area_pred_label"]), "{id} rsp");
        assert_eq!(cm.area_label(), counts(&r["area_label"]), "{id} rsp");
        let rsp = cm.report(&[]);
        c.vector(&format!("{id} rsp IoU"), &rsp.iou, &r["IoU"]);
        c.vector(&format!("{id} rsp Fscore"), &rsp.fscore, &r["Fscore"]);
        c.scalar(&format!("{id} rsp OA"), rsp.oa, &r["OA"]);
        c.scalar(&format!("{id} rsp mIoU"), rsp.miou, &r["mIoU"]);
        c.scalar(&format!("{id} rsp mFscore"), rsp.mf1, &r["mFscore"]);
        c.scalar(
            &format!("{id} rsp mF1_standard"),
            rsp.mf1_standard,
            &r["mF1_standard"],
        );
    }
    assert!(seen >= 4);
    assert!(c.failures.is_empty(), "{}", c.failures.join("\n"));
}

#[test]
fn reduce_zero_label_reproduces_the_loveda_ground_truth() {
    let mut seen = 0;
    for case in &cases() {
        for image in case["images"].as_array().unwrap() {
            if image["gt_raw"].is_null() {
                continue;
            }
            let mut raw = flat(&image["gt_raw"]);
            reduce_zero_label(&mut raw);
            assert_eq!(raw, flat(&image["gt"]), "{}", case["id"]);
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

#[test]
fn json_uses_class_names_and_null_for_nan() {
    let mut cm = ConfusionMatrix::new(3).unwrap();
    cm.accumulate(&[0, 1, 1], &[0, 1, 0], None).unwrap();
    let names = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let json = cm.report(&[]).to_json(&names);
    assert!(json["iou"]["c"].is_null());
    assert_eq!(json["iou"]["b"], 0.5);
    assert_eq!(json["oa"].as_f64(), Some(2.0 / 3.0));
    for key in ["miou", "mf1", "oa", "iou", "f1"] {
        assert!(json.get(key).is_some(), "{key}");
    }
}
