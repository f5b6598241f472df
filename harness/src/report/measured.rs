//! The final metrics of exactly the plan's current keys, read from the store.

use std::collections::BTreeMap;

use anyhow::Context;
use sqlx::Row;

use super::lineage::Observation;
use crate::store::Store;

/// Fills each observation's `metrics` with the final metrics (step NULL) stored under its key;
/// an observation whose key has none stays `None` (not run, or failed).
pub async fn attach(store: &Store, observations: &mut [Observation]) -> anyhow::Result<()> {
    for observation in observations.iter_mut() {
        let rows = sqlx::query(
            "SELECT m.name, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key
             WHERE m.stage_key = ? AND m.step IS NULL AND s.status IN ('succeeded', 'cached')",
        )
        .bind(&observation.key)
        .fetch_all(store.reader())
        .await
        .with_context(|| {
            format!(
                "reading the metrics of {} from {}",
                observation.stage,
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
        if !metrics.is_empty() {
            observation.metrics = Some(metrics);
        }
    }
    Ok(())
}
