//! `rsfm sql` is read-only: writes are refused and the rows survive, on a real database.

use std::path::Path;

use crate::common::{final_metric, record, record_run};
use rsfm_harness::store::{StageRecord, StageStatus, Store};
use serde_json::json;

/// A results dir whose database holds two stages with a metric each.
async fn results_with_rows(dir: &Path) {
    let store = Store::open(&dir.join("rsfm.db")).await.unwrap();
    let inv = store.begin_invocation(&[]).await.unwrap();
    for (key, value) in [("k1", 0.5), ("k2", 0.75)] {
        let record = StageRecord {
            name: format!("stage-{key}"),
            experiment: "example".into(),
            ..record(key, "", inv)
        };
        let metrics = vec![final_metric("map", value)];
        record_run(&store, &record, StageStatus::Succeeded, metrics).await;
    }
    store.close().await;
}

async fn counts(dir: &Path) -> (i64, i64, i64) {
    let store = Store::open_read_only(&dir.join("rsfm.db")).await.unwrap();
    let (_, rows) = store
        .query_read_only(
            "SELECT (SELECT count(*) FROM stages), (SELECT count(*) FROM metrics),
                    (SELECT count(*) FROM sqlite_master WHERE type = 'table')",
        )
        .await
        .unwrap();
    store.close().await;
    (
        rows[0][0].as_i64().unwrap(),
        rows[0][1].as_i64().unwrap(),
        rows[0][2].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn writes_are_refused_and_rows_survive() {
    let dir = tempfile::tempdir().unwrap();
    results_with_rows(dir.path()).await;
    let before = counts(dir.path()).await;
    assert_eq!((before.0, before.1), (2, 2));

    let store = Store::open_read_only(&dir.path().join("rsfm.db"))
        .await
        .unwrap();
    let attacked = dir.path().join("attached.db");
    for statement in [
        "DELETE FROM stages".to_string(),
        "UPDATE stages SET status = 'failed'".into(),
        "INSERT INTO metrics (stage_key, name, value) VALUES ('k1', 'x', 1)".into(),
        "DROP TABLE metrics".into(),
        format!("ATTACH DATABASE '{}' AS other", attacked.display()),
        "SELECT 1; DELETE FROM stages".into(),
        "select * from stages;delete from metrics;".into(),
        "WITH doomed AS (SELECT key FROM stages) DELETE FROM stages WHERE key IN doomed".into(),
        "PRAGMA query_only = OFF".into(),
    ] {
        let err = store
            .query_read_only(&statement)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not allowed") || err.contains("statements given"),
            "{statement}: {err}"
        );
    }
    store.close().await;
    assert_eq!(
        counts(dir.path()).await,
        before,
        "every row and table survived"
    );
    assert!(!attacked.exists(), "ATTACH created no file");
}

#[tokio::test]
async fn queries_return_columns_and_typed_cells() {
    let dir = tempfile::tempdir().unwrap();
    results_with_rows(dir.path()).await;
    let store = Store::open_read_only(&dir.path().join("rsfm.db"))
        .await
        .unwrap();
    let (columns, rows) = store
        .query_read_only("SELECT s.key, m.value, s.fraction, 3 AS n, x'ff' AS b FROM stages s JOIN metrics m ON m.stage_key = s.key ORDER BY s.key")
        .await
        .unwrap();
    assert_eq!(columns, ["key", "value", "fraction", "n", "b"]);
    assert_eq!(
        rows,
        vec![
            vec![json!("k1"), json!(0.5), json!(null), json!(3), json!("ff")],
            vec![json!("k2"), json!(0.75), json!(null), json!(3), json!("ff")],
        ]
    );
    let (columns, rows) = store
        .query_read_only("SELECT key, status FROM stages WHERE 0")
        .await
        .unwrap();
    assert_eq!(
        (columns, rows.len()),
        (vec!["key".to_string(), "status".to_string()], 0)
    );
    let (columns, _) = store
        .query_read_only("PRAGMA table_info(stages)")
        .await
        .unwrap();
    assert!(columns.contains(&"name".to_string()));
    let err = store
        .query_read_only("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no such table"), "{err:#}");
}
