//! The final metrics of exactly the plan's current keys, read from the store.

use std::collections::BTreeMap;

use anyhow::Context;
use sqlx::Row;

use super::lineage::{Observation, Rescore};
use crate::store::Store;

/// Fills each observation's `metrics` with the final metrics (step NULL) stored under its key;
/// an observation whose key has none stays `None` (not run, or failed).
pub async fn attach(store: &Store, observations: &mut [Observation]) -> anyhow::Result<()> {
    for observation in observations.iter_mut() {
        observation.metrics = final_metrics(store, &observation.key, &observation.stage).await?;
    }
    Ok(())
}

/// The same for the rescores of the plan's evaluations.
pub async fn attach_rescores(store: &Store, rescores: &mut [Rescore]) -> anyhow::Result<()> {
    for rescore in rescores.iter_mut() {
        rescore.metrics = final_metrics(store, &rescore.key, &rescore.stage).await?;
    }
    Ok(())
}

/// The final metrics stored under `key` (of `stage`, for messages) of a succeeded or cached
/// stage; `None` when there are none.
async fn final_metrics(
    store: &Store,
    key: &str,
    stage: &str,
) -> anyhow::Result<Option<BTreeMap<String, f64>>> {
    let rows = sqlx::query(
        "SELECT m.name, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key
         WHERE m.stage_key = ? AND m.step IS NULL AND s.status IN ('succeeded', 'cached')",
    )
    .bind(key)
    .fetch_all(store.reader())
    .await
    .with_context(|| {
        format!(
            "reading the metrics of {stage} from {}",
            store.path().display()
        )
    })?;
    let mut metrics = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get("name")?;
        let value: Option<f64> = row.try_get("value")?;
        if let Some(value) = value {
            metrics.insert(name, value);
        }
    }
    Ok((!metrics.is_empty()).then_some(metrics))
}
