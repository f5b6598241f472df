//! `rsfm synth` writes real-format data that `rsfm eval` scores: ground truth given back as
//! detections scores mAP 1, and a bad label line is an error naming file and line.

use std::collections::BTreeMap;

use crate::common::{text, Project};

#[test]
fn synthetic_dota_ground_truth_scored_as_detections_gives_map_1() {
    let project = Project::new();
    let data = project.path("dota");
    project.ok(&[
        "synth",
        "dota",
        "--out",
        data.to_str().unwrap(),
        "--images",
        "4",
        "--seed",
        "3",
        "--size",
        "256",
    ]);
    let gt = data.join("train/labelTxt");
    // Every ground-truth object becomes a detection of score 1 in Task1 format.
    let mut task1: BTreeMap<String, String> = BTreeMap::new();
    for file in std::fs::read_dir(&gt).unwrap() {
        let path = file.unwrap().path();
        let image = path.file_stem().unwrap().to_str().unwrap().to_string();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 {
                continue; // header lines
            }
            let entry = task1.entry(fields[8].to_string()).or_default();
            entry.push_str(&format!("{image} 1.0 {}\n", fields[..8].join(" ")));
        }
    }
    assert!(!task1.is_empty(), "synth wrote objects");
    for (class, lines) in &task1 {
        project.write(&format!("det/Task1_{class}.txt"), lines);
    }
    let det = project.path("det");
    let (gt_arg, det_arg) = (gt.to_str().unwrap(), det.to_str().unwrap());
    let eval_dota = ["eval", "dota", "--gt", gt_arg, "--det", det_arg];
    for protocol in ["devkit", "devkit-v1.5", "mmrotate"] {
        let out = project.ok(&[&eval_dota[..], &["--protocol", protocol, "--json"]].concat());
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        // VOC07 sums eleven p/11 terms, as the devkit does: 1 up to rounding.
        let map = report["map"].as_f64().unwrap();
        assert!((map - 1.0).abs() < 1e-12, "{protocol}: {report}");
    }

    // A truncated label line is bad input: exit 2, naming file and line.
    let first = std::fs::read_dir(&gt)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut labels = std::fs::read_to_string(&first).unwrap();
    labels.push_str("1 2 3 4 5\n");
    std::fs::write(&first, &labels).unwrap();
    let out = project.rsfm(&eval_dota);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let line = labels.lines().count();
    let name = first.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(&format!("{name}:{line}")), "{stderr}");
}
