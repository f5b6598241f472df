//! Which rows are current: the latest use per stage, or the keys recipes resolve to now;
//! superseded and gone rows appear only in history.

use crate::common::{final_metric, record, record_run};
use rsfm_harness::query::{self, ResultsQuery};
use rsfm_harness::store::{StageScope, StageStatus, Store};

/// Lets the millisecond clock of `last_used_at` move on, so uses are ordered.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

async fn ran(store: &Store, key: &str, name: &str, inv: i64, score: f64) {
    tick().await;
    record_run(
        store,
        &record(key, name, inv),
        StageStatus::Succeeded,
        vec![final_metric("score", score)],
    )
    .await;
}

/// `(key, state)` of the results `scope` lists.
async fn listed(store: &Store, scope: StageScope) -> Vec<(String, String)> {
    let query = ResultsQuery {
        scope,
        ..Default::default()
    };
    let mut rows: Vec<(String, String)> = query::results(store, &query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.state))
        .collect();
    rows.sort();
    rows
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

#[tokio::test]
async fn the_latest_use_is_current_and_history_marks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
    let inv = store.begin_invocation(&[]).await.unwrap();
    ran(&store, "old", "train", inv, 1.0).await;
    ran(&store, "other", "eval", inv, 3.0).await;
    ran(&store, "new", "train", inv, 2.0).await;

    let latest = StageScope::default();
    assert_eq!(
        listed(&store, latest.clone()).await,
        pairs(&[("new", "current"), ("other", "current")])
    );
    // Reusing the old key from the cache makes it current again, still `succeeded`.
    tick().await;
    store
        .mark_cached(&record("old", "train", inv))
        .await
        .unwrap();
    assert_eq!(
        listed(&store, latest.clone()).await,
        pairs(&[("old", "current"), ("other", "current")])
    );
    let rows = store.scoped_stages(&latest).await.unwrap();
    assert!(rows.iter().all(|r| r.status == StageStatus::Succeeded));

    // The keys a plan resolves to decide, whatever ran last.
    let planned = StageScope::current(Some(vec!["new".into()]));
    assert_eq!(listed(&store, planned).await, pairs(&[("new", "current")]));
    let history = StageScope {
        current_keys: Some(vec!["new".into()]),
        history: true,
    };
    assert_eq!(
        listed(&store, history).await,
        pairs(&[
            ("new", "current"),
            ("old", "superseded"),
            ("other", "superseded")
        ])
    );

    // gc removed `old`: gone, and `new` is the latest row of `train` left.
    assert_eq!(store.mark_removed(&["old".into()]).await.unwrap(), 1);
    assert_eq!(
        listed(&store, latest).await,
        pairs(&[("new", "current"), ("other", "current")])
    );
    let all = StageScope {
        current_keys: None,
        history: true,
    };
    assert_eq!(
        listed(&store, all).await,
        pairs(&[("new", "current"), ("old", "gone"), ("other", "current")])
    );
}
