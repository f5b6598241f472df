//! The results store on real SQLite files: migrations, the stage lifecycle, atomicity, stale runs.

use std::path::Path;

use rsfm_harness::store::{
    ArtifactRow, MetricRow, ReportedRow, StageFilter, StageOutcome, StageRecord, StageStatus, Store,
};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

fn record(key: &str, name: &str, invocation_id: i64) -> StageRecord {
    StageRecord {
        key: key.into(),
        name: name.into(),
        kind: "command".into(),
        experiment: "example".into(),
        model: Some("vit-b".into()),
        task: Some("detection".into()),
        dataset: Some("dior-r".into()),
        fraction: Some(0.5),
        matrix: json!({ "size": "1" }),
        params: json!({ "lr": 1e-4 }),
        seed: Some(0),
        split: None,
        protocol: None,
        host: rsfm_harness::process::host_name(),
        device: "cpu".into(),
        invocation_id,
        work_dir: format!("/tmp/work/{key}"),
        log_path: format!("/tmp/work/{key}/stage.log"),
    }
}

fn succeeded(metrics: Vec<MetricRow>, artifacts: Vec<ArtifactRow>) -> StageOutcome {
    StageOutcome {
        status: StageStatus::Succeeded,
        error: None,
        stderr_tail: None,
        metrics,
        artifacts,
        cache_dir: Some("/tmp/cache/ab/abc".into()),
        duration_s: 1.5,
        commit_s: None,
    }
}

fn metric(name: &str, value: f64, step: Option<i64>) -> MetricRow {
    MetricRow {
        name: name.into(),
        value,
        step,
    }
}

/// A second, writable connection to the same file, for test set-up the API does not offer.
async fn raw(db: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(db))
        .await
        .unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    let (_, rows) = store.query_read_only(sql).await.unwrap();
    rows[0][0].as_i64().unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results/rsfm.db");
    let store = Store::open(&db).await.unwrap();
    let id = store
        .begin_invocation(&["rsfm".into(), "run".into()])
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&db).await.unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM _sqlx_migrations WHERE success"
        )
        .await,
        migrations
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM invocations").await,
        1,
        "reopening kept the data"
    );
    let (_, mode) = store.query_read_only("PRAGMA journal_mode").await.unwrap();
    assert_eq!(mode[0][0], json!("wal"));
    let (_, query_only) = store.query_read_only("PRAGMA query_only").await.unwrap();
    assert_eq!(query_only[0][0], json!(1), "readers run with query_only");
    let (_, fk) = store.query_read_only("PRAGMA foreign_keys").await.unwrap();
    assert_eq!(fk[0][0], json!(1));
    store
        .finish_invocation(id, "succeeded", &json!({ "executed": 0 }))
        .await
        .unwrap();
    let (_, rows) = store
        .query_read_only("SELECT status, summary, argv FROM invocations")
        .await
        .unwrap();
    assert_eq!(
        rows[0],
        vec![
            json!("succeeded"),
            json!("{\"executed\":0}"),
            json!("[\"rsfm\",\"run\"]")
        ]
    );
    assert!(store
        .finish_invocation(id + 1, "failed", &json!({}))
        .await
        .is_err());
}

#[tokio::test]
async fn stage_lifecycle_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
    let inv = store.begin_invocation(&["rsfm".into()]).await.unwrap();

    store
        .stage_started(&record("k1", "train@vit-b", inv))
        .await
        .unwrap();
    let rows = store.stages(&StageFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status, rows[0].attempts),
        (StageStatus::Running, 1)
    );
    assert!(rows[0].started_at.is_some() && rows[0].finished_at.is_none());

    let outcome = succeeded(
        vec![
            metric("map", 0.75, None),
            metric("loss", 2.0, Some(10)),
            metric("loss", 1.0, Some(20)),
        ],
        vec![ArtifactRow {
            path: "metrics.json".into(),
            size: 12,
            sha256: "00".repeat(32),
        }],
    );
    store.stage_finished("k1", &outcome).await.unwrap();
    let row = &store.stages(&StageFilter::default()).await.unwrap()[0];
    assert_eq!(row.status, StageStatus::Succeeded);
    assert_eq!(row.duration_s, Some(1.5));
    assert_eq!(row.cache_dir.as_deref(), Some("/tmp/cache/ab/abc"));
    assert!(row.finished_at.is_some());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM metrics WHERE stage_key = 'k1'"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM artifacts WHERE stage_key = 'k1'"
        )
        .await,
        1
    );
    let (_, value) = store
        .query_read_only("SELECT value FROM metrics WHERE name = 'map'")
        .await
        .unwrap();
    assert_eq!(value[0][0], json!(0.75));

    // A forced rerun that fails: a new attempt, the error recorded, the earlier metrics kept.
    store
        .stage_started(&record("k1", "train@vit-b", inv))
        .await
        .unwrap();
    let failed = StageOutcome {
        status: StageStatus::Failed,
        error: Some("exit status 3".into()),
        stderr_tail: Some("Traceback ...".into()),
        metrics: vec![],
        artifacts: vec![],
        cache_dir: None,
        duration_s: 0.25,
        commit_s: None,
    };
    store.stage_finished("k1", &failed).await.unwrap();
    let row = &store.stages(&StageFilter::default()).await.unwrap()[0];
    assert_eq!((row.status, row.attempts), (StageStatus::Failed, 2));
    assert_eq!(row.error.as_deref(), Some("exit status 3"));
    assert_eq!(row.stderr_tail.as_deref(), Some("Traceback ..."));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM metrics WHERE stage_key = 'k1'"
        )
        .await,
        3
    );
    let (_, runs) = store
        .query_read_only("SELECT attempt, status, error FROM stage_runs ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        runs,
        vec![
            vec![json!(1), json!("succeeded"), json!(null)],
            vec![json!(2), json!("failed"), json!("exit status 3")]
        ]
    );

    // A succeeded attempt replaces the metrics; a NaN is stored as NULL.
    store
        .stage_started(&record("k1", "train@vit-b", inv))
        .await
        .unwrap();
    store
        .stage_finished(
            "k1",
            &succeeded(vec![metric("map", f64::NAN, None)], vec![]),
        )
        .await
        .unwrap();
    let (_, metrics) = store
        .query_read_only("SELECT name, value FROM metrics")
        .await
        .unwrap();
    assert_eq!(metrics, vec![vec![json!("map"), json!(null)]]);
    assert_eq!(count(&store, "SELECT count(*) FROM artifacts").await, 0);

    // A cached stage keeps what the run that produced it recorded, its status included (how the
    // result was produced); the use is recorded in `last_used_at`. A stage with no record of
    // its run is `cached`.
    let before = store.stages(&StageFilter::default()).await.unwrap()[0].clone();
    store
        .mark_cached(&record("k1", "train@vit-b", inv))
        .await
        .unwrap();
    store
        .mark_cached(&record("k2", "eval@vit-b", inv))
        .await
        .unwrap();
    let rows = store.stages(&StageFilter::default()).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.key.as_str(), r.status, r.attempts))
            .collect::<Vec<_>>(),
        vec![
            ("k2", StageStatus::Cached, 0),
            ("k1", StageStatus::Succeeded, 3)
        ]
    );
    assert_eq!(rows[1].finished_at, before.finished_at);
    assert!(rows[1].last_used_at >= before.last_used_at);
    assert_eq!(rows[1].seed, Some(0));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM metrics WHERE stage_key = 'k1'"
        )
        .await,
        1
    );

    let by_key = store
        .stages(&StageFilter {
            key_prefix: Some("k2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_key.len(), 1);
    let none = store
        .stages(&StageFilter {
            experiment: Some("other".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    let err = store
        .stage_finished("never-started", &succeeded(vec![], vec![]))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("never recorded as started"),
        "{err:#}"
    );
}

#[tokio::test]
async fn stage_finished_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rsfm.db");
    let store = Store::open(&db).await.unwrap();
    let inv = store.begin_invocation(&[]).await.unwrap();
    store
        .stage_started(&record("k1", "train", inv))
        .await
        .unwrap();
    // Make the last artifact insert fail, after the status update and the metric inserts ran.
    let pool = raw(&db).await;
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON artifacts WHEN NEW.path = 'boom'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let outcome = succeeded(
        vec![metric("map", 0.5, None)],
        vec![
            ArtifactRow {
                path: "ok".into(),
                size: 1,
                sha256: "11".repeat(32),
            },
            ArtifactRow {
                path: "boom".into(),
                size: 1,
                sha256: "22".repeat(32),
            },
        ],
    );
    let err = store.stage_finished("k1", &outcome).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("refused by the test"),
        "{err:#}"
    );
    let row = &store.stages(&StageFilter::default()).await.unwrap()[0];
    assert_eq!(
        row.status,
        StageStatus::Running,
        "the status update was rolled back"
    );
    assert!(row.finished_at.is_none());
    for table in ["metrics", "artifacts", "stage_runs"] {
        assert_eq!(
            count(&store, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    // The writer is usable afterwards (the transaction did not leak).
    store
        .stage_finished("k1", &succeeded(vec![metric("map", 0.5, None)], vec![]))
        .await
        .unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM metrics").await, 1);
}

#[tokio::test]
async fn stale_running_stages_become_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rsfm.db");
    let store = Store::open(&db).await.unwrap();
    let live = store.begin_invocation(&[]).await.unwrap();
    let dead = store.begin_invocation(&[]).await.unwrap();
    let remote = store.begin_invocation(&[]).await.unwrap();
    let ended = store.begin_invocation(&[]).await.unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let pool = raw(&db).await;
    sqlx::query("UPDATE invocations SET pid = ? WHERE id = ?")
        .bind(dead_pid)
        .bind(dead)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE invocations SET host = 'elsewhere', pid = ? WHERE id = ?")
        .bind(dead_pid)
        .bind(remote)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    store
        .finish_invocation(ended, "failed", &json!({}))
        .await
        .unwrap();
    for (key, inv) in [
        ("live", live),
        ("dead", dead),
        ("remote", remote),
        ("ended", ended),
    ] {
        store.stage_started(&record(key, key, inv)).await.unwrap();
    }

    assert_eq!(store.mark_stale_running_interrupted().await.unwrap(), 2);
    let rows = store.stages(&StageFilter::default()).await.unwrap();
    let status = |key: &str| rows.iter().find(|r| r.key == key).unwrap().status;
    assert_eq!(status("live"), StageStatus::Running);
    assert_eq!(status("remote"), StageStatus::Running);
    assert_eq!(status("dead"), StageStatus::Interrupted);
    assert_eq!(status("ended"), StageStatus::Interrupted);
    let (_, inv) = store
        .query_read_only(&format!("SELECT status FROM invocations WHERE id = {dead}"))
        .await
        .unwrap();
    assert_eq!(inv[0][0], json!("interrupted"));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM stage_runs WHERE status = 'interrupted'"
        )
        .await,
        2
    );
    assert_eq!(store.mark_stale_running_interrupted().await.unwrap(), 0);
}

#[tokio::test]
async fn reported_numbers_replace_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
    let cell = |table: &str, row: &str, value: f64| ReportedRow {
        table_name: table.into(),
        row: row.into(),
        col: "mAP".into(),
        value: Some(value),
        source: Some(format!("paper {table}")),
    };
    store
        .replace_reported(&[
            cell("t3", "vit-b", 1.0),
            cell("t3", "vit-l", 2.0),
            cell("t4", "vit-b", 3.0),
        ])
        .await
        .unwrap();
    store
        .replace_reported(&[cell("t3", "vit-g", 4.0)])
        .await
        .unwrap();
    let t3 = store.reported(Some("t3")).await.unwrap();
    assert_eq!(t3, vec![cell("t3", "vit-g", 4.0)]);
    assert_eq!(store.reported(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn read_only_open_needs_an_existing_database_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rsfm.db");
    let err = Store::open_read_only(&db).await.unwrap_err().to_string();
    assert!(
        err.contains("no results yet") && err.contains("rsfm.db") && err.contains("rsfm run"),
        "{err}"
    );
    assert!(!db.exists(), "opening read-only created nothing");

    Store::open(&db).await.unwrap().close().await;
    let store = Store::open_read_only(&db).await.unwrap();
    let err = store.begin_invocation(&[]).await.unwrap_err().to_string();
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM stages").await, 0);
}

#[tokio::test]
async fn file_hash_rows_round_trip_in_one_lookup() {
    use rsfm_harness::store::FileHashRow;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
    let row = |path: &str, size: i64| FileHashRow {
        path: path.into(),
        size,
        mtime_ns: 1_700_000_000_123_456_789,
        inode: i64::MAX,
        sha256: format!("{size:064x}"),
    };
    let rows: Vec<FileHashRow> = (0..1000)
        .map(|i| row(&format!("/data/\"quoted\" ü/{i}.png"), i))
        .collect();
    store.store_file_hashes(&rows).await.unwrap();
    store
        .store_file_hashes(&[row("/data/\"quoted\" ü/7.png", 70)])
        .await
        .unwrap();
    let mut asked: Vec<String> = rows.iter().map(|r| r.path.clone()).collect();
    asked.push("/not/cached".into());
    let found = store.lookup_file_hashes(&asked).await.unwrap();
    assert_eq!(found.len(), 1000);
    assert_eq!(
        found["/data/\"quoted\" ü/7.png"],
        row("/data/\"quoted\" ü/7.png", 70),
        "replaced"
    );
    assert_eq!(found["/data/\"quoted\" ü/999.png"], rows[999]);
    assert!(store.lookup_file_hashes(&[]).await.unwrap().is_empty());
}
