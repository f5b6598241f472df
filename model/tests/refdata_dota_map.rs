//! DOTA/DIOR-R mAP against `../shared/refdata/dota_map_cases_public.json`: every case,
//! every protocol key, VOC07 and VOC12.

use rsfm_model::metrics::detection::{
    evaluate, ApMetric, Detection, EvalOptions, GroundTruth, Protocol,
};
use serde_json::Value;

use crate::common::refdata_cases;

fn cases() -> Vec<Value> {
    refdata_cases("dota_map_cases_public.json")
}

fn quad(v: &Value) -> [[f64; 2]; 4] {
    let n: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    [[n[0], n[1]], [n[2], n[3]], [n[4], n[5]], [n[6], n[7]]]
}

fn inputs(case: &Value) -> (Vec<GroundTruth>, Vec<Detection>, Vec<String>) {
    let classes: Vec<String> = case["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut gts = Vec::new();
    for image in case["images"].as_array().unwrap() {
        let image = image.as_str().unwrap();
        for obj in case["gts"][image].as_array().into_iter().flatten() {
            gts.push(GroundTruth {
                image: image.to_owned(),
                class: obj["class"].as_str().unwrap().to_owned(),
                poly: quad(&obj["poly"]),
                difficult: obj["difficult"].as_i64().unwrap() != 0,
            });
        }
    }
    let dets = case["dets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Detection {
            image: d["image"].as_str().unwrap().to_owned(),
            class: d["class"].as_str().unwrap().to_owned(),
            score: d["score"].as_f64().unwrap(),
            poly: quad(&d["poly"]),
        })
        .collect();
    (gts, dets, classes)
}

/// Protocol keys of the vectors, the protocol that reproduces each, and its tolerance.
const PROTOCOLS: [(&str, Protocol, f64); 5] = [
    ("devkit_task1_v1.0", Protocol::Devkit, 1e-9),
    ("devkit_task1_v1.5", Protocol::DevkitV15, 1e-9),
    (
        "mmrotate_1.x_default",
        Protocol::Mmrotate {
            ignore_difficult: false,
        },
        3e-6,
    ),
    (
        "mmrotate_1.x_ignore_difficult",
        Protocol::Mmrotate {
            ignore_difficult: true,
        },
        3e-6,
    ),
    (
        "mmrotate_0.x_ignore_difficult",
        Protocol::MmrotateV0 {
            ignore_difficult: true,
        },
        3e-6,
    ),
];

fn agrees(got: Option<f64>, expected: &Value, tol: f64) -> bool {
    match (got.filter(|v| !v.is_nan()), expected.as_f64()) {
        (None, None) => true,
        (Some(g), Some(e)) => (g - e).abs() <= tol,
        _ => false,
    }
}

#[test]
fn every_protocol_reproduces_the_reference_ap_and_map() {
    let cases = cases();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let (gts, dets, classes) = inputs(case);
        for (key, protocol, tol) in PROTOCOLS {
            for (metric_key, metric) in [("voc07", ApMetric::Voc07), ("voc12", ApMetric::Voc12)] {
                let expected = &case["expected"][key][metric_key];
                assert!(
                    expected.is_object(),
                    "{} lacks {key}/{metric_key}",
                    case["id"]
                );
                let opts = EvalOptions {
                    protocol,
                    metric,
                    iou_thresholds: vec![0.5],
                };
                let report = evaluate(&gts, &dets, &classes, &opts);
                let label = format!("{} {key}/{metric_key}", case["id"]);
                if !agrees(Some(report.map), &expected["mAP"], tol) {
                    failures.push(format!(
                        "{label}: mAP {} vs {}",
                        report.map, expected["mAP"]
                    ));
                }
                for class in &classes {
                    let got = report.ap.get(class).copied().flatten();
                    if !agrees(got, &expected["ap"][class], tol) {
                        failures.push(format!(
                            "{label}: AP[{class}] {got:?} vs {}",
                            expected["ap"][class]
                        ));
                    }
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, cases.len() * 10);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn report_serialises_to_the_documented_json() {
    let case = &cases()[0];
    let (gts, dets, classes) = inputs(case);
    let report = evaluate(&gts, &dets, &classes, &EvalOptions::default());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["map"].is_number());
    assert!(json["ap"].is_object());
    assert!(json.get("per_threshold").is_none());
    let no_dets = evaluate(&gts, &[], &classes, &EvalOptions::default());
    let json = serde_json::to_value(&no_dets).unwrap();
    assert!(
        json["map"].is_null(),
        "the devkit cannot score a class without detections"
    );
}

#[test]
fn protocol_names_parse() {
    assert_eq!("devkit".parse::<Protocol>(), Ok(Protocol::Devkit));
    assert_eq!("devkit-v1.5".parse::<Protocol>(), Ok(Protocol::DevkitV15));
    assert_eq!(
        "mmrotate-ignore-difficult".parse::<Protocol>(),
        Ok(Protocol::Mmrotate {
            ignore_difficult: true
        })
    );
    assert!("coco".parse::<Protocol>().is_err());
    assert_eq!("voc12".parse::<ApMetric>(), Ok(ApMetric::Voc12));
}
