//! `rsfm results`: filters and `--where` expressions select the right rows of a real database.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{final_metric, record, record_run};
use rsfm_harness::query::{self, ResultsQuery, WhereExpr};
use rsfm_harness::store::{MetricRow, StageRecord, StageStatus, Store};
use serde_json::json;

const MODELS: [&str; 2] = ["vit-b", "vit-l"];
const FRACTIONS: [f64; 3] = [0.1, 0.5, 1.0];
const SEEDS: [i64; 2] = [0, 1];

/// The mAP a stage reports in this fixture: a function of its coordinates, so tests can compute
/// which rows a filter must select.
fn map_of(model: &str, fraction: f64, seed: i64) -> f64 {
    let base = if model == "vit-b" { 60.0 } else { 70.0 };
    base + 10.0 * fraction + seed as f64
}

fn key_of(model: &str, fraction: f64, seed: i64) -> String {
    format!("{model}-{fraction}-{seed}")
}

/// Twelve finetune stages (2 models × 3 fractions × 2 seeds, seed as a matrix variable), each with
/// a final `map` and two `loss` values at steps; one failed stage in another experiment.
async fn fixture(dir: &Path) -> Store {
    let store = Store::open(&dir.join("rsfm.db")).await.unwrap();
    let inv = store.begin_invocation(&[]).await.unwrap();
    for model in MODELS {
        for fraction in FRACTIONS {
            for seed in SEEDS {
                let key = key_of(model, fraction, seed);
                let record = det_record(
                    &key,
                    "finetune",
                    model,
                    fraction,
                    json!({ "seed": seed.to_string() }),
                    inv,
                );
                let metrics = vec![
                    final_metric("map", map_of(model, fraction, seed)),
                    MetricRow {
                        name: "loss".into(),
                        value: 2.0,
                        step: Some(100),
                    },
                    MetricRow {
                        name: "loss".into(),
                        value: 1.0,
                        step: Some(200),
                    },
                ];
                record_run(&store, &record, StageStatus::Succeeded, metrics).await;
            }
        }
    }
    let mut failed = det_record("broken", "seg", "vit-b", 1.0, json!({}), inv);
    failed.experiment = "other".into();
    failed.task = Some("segmentation".into());
    failed.params = json!({ "seed": 7 });
    let metrics = vec![final_metric("miou", 12.5)];
    record_run(&store, &failed, StageStatus::Failed, metrics).await;
    store.close().await;
    Store::open_read_only(&dir.join("rsfm.db")).await.unwrap()
}

/// A finetune-det stage of the `efficiency` experiment on DIOR-R.
fn det_record(
    key: &str,
    name: &str,
    model: &str,
    fraction: f64,
    matrix: serde_json::Value,
    inv: i64,
) -> StageRecord {
    StageRecord {
        name: format!("{name}@{key}"),
        kind: "finetune-det".into(),
        experiment: "efficiency".into(),
        model: Some(model.into()),
        task: Some("detection".into()),
        dataset: Some("dior-r".into()),
        fraction: Some(fraction),
        matrix,
        ..record(key, name, inv)
    }
}

/// Keys of the `map` rows a `--where` expression selects.
async fn keys_where(store: &Store, expr: &str) -> BTreeSet<String> {
    let query = ResultsQuery {
        filter: Some(WhereExpr::parse(expr).unwrap()),
        ..Default::default()
    };
    query::results(store, &query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect()
}

/// Keys of the fixture's stages whose coordinates satisfy `pred`.
fn keys_matching(pred: impl Fn(&str, f64, i64) -> bool) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for model in MODELS {
        for fraction in FRACTIONS {
            for seed in SEEDS {
                if pred(model, fraction, seed) {
                    keys.insert(key_of(model, fraction, seed));
                }
            }
        }
    }
    keys
}

#[tokio::test]
async fn where_expressions_select_the_right_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(dir.path()).await;
    let map = |m: &str, f: f64, s: i64| map_of(m, f, s);
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "model = 'vit-b' and metric = 'map'",
            keys_matching(|m, _, _| m == "vit-b"),
        ),
        (
            "metric = \"map\" and value > 70",
            keys_matching(|m, f, s| map(m, f, s) > 70.0),
        ),
        (
            "metric = 'map' and value >= 70 and value <= 75",
            keys_matching(|m, f, s| (70.0..=75.0).contains(&map(m, f, s))),
        ),
        (
            "fraction between 0.1 and 0.5 and metric = 'map'",
            keys_matching(|_, f, _| f <= 0.5),
        ),
        (
            "fraction in 0.1..1 and metric = 'map'",
            keys_matching(|_, f, _| f < 1.0),
        ),
        (
            "fraction in 0.1..=1 and seed = 1",
            keys_matching(|_, _, s| s == 1),
        ),
        (
            "seed in (1) and not (model = 'vit-l' or fraction < 0.5)",
            keys_matching(|m, f, s| s == 1 && m == "vit-b" && f >= 0.5),
        ),
        (
            "(model = 'vit-l' and seed = 0) or (model = 'vit-b' and seed = 1)",
            keys_matching(|m, _, s| (m == "vit-l") == (s == 0)),
        ),
        (
            "model not in ('vit-b') and status = 'succeeded'",
            keys_matching(|m, _, _| m == "vit-l"),
        ),
        (
            "experiment = 'efficiency' and fraction != 0.5",
            keys_matching(|_, f, _| f != 0.5),
        ),
        (
            "key = 'vit-b-0.1-0'",
            keys_matching(|m, f, s| m == "vit-b" && f == 0.1 && s == 0),
        ),
        (
            "status = 'failed' and seed = 7",
            BTreeSet::from(["broken".to_string()]),
        ),
        ("step is not null", BTreeSet::new()),
        ("model = 'x''); DROP TABLE stages; --'", BTreeSet::new()),
    ];
    for (expr, expected) in cases {
        assert_eq!(keys_where(&store, expr).await, expected, "{expr}");
    }

    // Step values appear only when asked for, and `step` filters them.
    let with_steps = ResultsQuery {
        filter: Some(WhereExpr::parse("metric = 'loss' and step in 150..250").unwrap()),
        include_steps: true,
        ..Default::default()
    };
    let rows = query::results(&store, &with_steps).await.unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows
        .iter()
        .all(|r| r.step == Some(200) && r.value == Some(1.0)));
    let (_, count) = store
        .query_read_only("SELECT count(*) FROM stages")
        .await
        .unwrap();
    assert_eq!(
        count[0][0],
        json!(13),
        "the injection attempt changed nothing"
    );
}

#[tokio::test]
async fn flag_filters_and_row_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(dir.path()).await;
    let query = ResultsQuery {
        experiment: Some("efficiency".into()),
        model: Some("vit-l".into()),
        task: Some("detection".into()),
        dataset: Some("dior-r".into()),
        metric: Some("map".into()),
        ..Default::default()
    };
    let rows = query::results(&store, &query).await.unwrap();
    assert_eq!(rows.len(), 6);
    let first = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(
        first,
        json!({
            "experiment": "efficiency", "name": format!("finetune@{}", rows[0].key), "key": rows[0].key,
            "kind": "finetune-det", "model": "vit-l", "task": "detection", "dataset": "dior-r",
            "fraction": rows[0].fraction, "split": null, "protocol": null, "seed": rows[0].seed, "status": "succeeded", "state": "current",
            "finished_at": rows[0].finished_at, "metric": "map", "value": rows[0].value, "step": null
        })
    );
    let row = &rows[0];
    assert_eq!(
        row.value,
        Some(map_of("vit-l", row.fraction.unwrap(), row.seed.unwrap()))
    );
    let csv = query::results_table(&rows).unwrap().to_csv();
    assert!(csv.starts_with(
        "experiment,name,key,kind,model,task,dataset,fraction,split,protocol,seed,status,state,finished_at,metric,value,step\r\n"
    ));
    assert_eq!(csv.lines().count(), 7);
}

#[test]
fn where_errors_name_the_column() {
    let err = WhereExpr::parse("fraction between 0.1 or 2").unwrap_err();
    assert_eq!(err.column, 22);
    assert!(err.to_string().contains("expected `and`"), "{err}");
}
