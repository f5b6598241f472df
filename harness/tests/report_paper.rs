//! `rsfm report` at paper scale: the study's plan, metrics stored under its current keys in a
//! real database, cells with reported values, Δ and verdicts; a superseded key fills no cell.

use crate::common::{final_metric, record, record_run};
use crate::paper_plan::{paper_dir, paper_plan};
use rsfm_harness::report::{self, Format, ReportOptions};
use rsfm_harness::store::{StageRecord, StageStatus, Store};

/// Records a succeeded stage `name` under `key` with one final metric.
async fn store_metric(store: &Store, key: &str, name: &str, metric: &str, value: f64) {
    let invocation = store.begin_invocation(&[]).await.unwrap();
    let record = StageRecord {
        kind: "evaluate".into(),
        experiment: "paper".into(),
        ..record(key, name, invocation)
    };
    let metrics = vec![final_metric(metric, value)];
    record_run(store, &record, StageStatus::Succeeded, metrics).await;
}

fn row(markdown: &str, label: &str) -> String {
    markdown
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label} in\n{markdown}"))
        .to_string()
}

#[tokio::test]
async fn paper_cells_show_reported_delta_and_verdict_from_current_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let (recipes, store, plan) = paper_plan(dir.path()).await;
    let key = |name: &str| {
        plan.stages
            .iter()
            .find(|s| s.stage.name == name)
            .unwrap_or_else(|| panic!("no stage {name}"))
            .key
            .key
            .clone()
    };
    let dior = "eval-dior@vit-2.4b-1.0";
    store_metric(&store, &key(dior), dior, "map", 0.731).await;
    let loveda = "eval-loveda@vit-2.4b-1.0";
    store_metric(&store, &key(loveda), loveda, "miou", 0.52).await;
    let small = "eval-dior@vit-b-1.0";
    store_metric(&store, &key(small), small, "map", 0.65).await;
    // An older run of the same stage under a key the plan no longer has.
    store_metric(&store, &"0".repeat(64), small, "map", 0.99).await;

    let out = dir.path().join("reports");
    let options = ReportOptions {
        paper_dir: paper_dir(),
        table: None,
        formats: vec![Format::Md, Format::Csv],
        out: out.clone(),
    };
    report::generate(&recipes, &plan, &store, &options)
        .await
        .unwrap();
    let dior_md = std::fs::read_to_string(out.join("dior-r.md")).unwrap();
    assert!(!dior_md.contains("Smoke scale"), "{dior_md}");
    let map = row(&dior_md, "mAP");
    assert!(
        map.contains("73.10 · 73.60 Δ −0.50 single run ⚠"),
        "one seed: no verdict: {map}"
    );
    assert!(
        map.contains("| 65.00 · — ⚠"),
        "no reported value, no verdict: {map}"
    );
    assert!(
        !dior_md.contains("99.00"),
        "the superseded run fills no cell"
    );
    assert!(
        dior_md.contains(&key(dior)[..12]),
        "the cell names its stage key"
    );
    assert!(
        dior_md.contains("vit-2.4b.embed_dim: reconstructed"),
        "{dior_md}"
    );
    let loveda_md = std::fs::read_to_string(out.join("loveda.md")).unwrap();
    assert!(
        row(&loveda_md, "mIoU")
            .contains("52.00 · 54.40 (test-server; this study: val, no verdict)")
            && !row(&loveda_md, "mIoU").contains('Δ'),
        "a val score gets no verdict against a test-server value: {loveda_md}"
    );
    assert!(
        !loveda_md
            .lines()
            .any(|l| l.starts_with("| ") && l.contains('Δ')),
        "{loveda_md}"
    );
    let comparison = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert!(
        comparison.contains("comparison,\"S5, ViT-H\",DIOR-R mAP,—,75.30"),
        "a published number is reported, never reproduced: {comparison}"
    );
    let rows = store.reported(Some("dior-r")).await.unwrap();
    assert!(rows
        .iter()
        .any(|r| r.row == "vit-2.4b" && r.value == Some(73.6)));
}
