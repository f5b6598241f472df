//! `rsfm results --curve STAGE`: a stage's values at training steps (loss, throughput, and any
//! metric the worker reported with a step), one row per step.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::Table;
use crate::store::{StageScope, Store};

/// The curve of each stage in `scope` that `stage` names (`name`, `experiment/name`, or a base
/// name without its matrix suffix, which covers every variant): columns `experiment`, `name`,
/// `step` and one per metric that some stage recorded at two steps or more (a value reported
/// once, such as a final metric tagged with the last step, is no curve). An error lists the
/// stages when none matches.
pub async fn curve_table(store: &Store, scope: &StageScope, stage: &str) -> anyhow::Result<Table> {
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT s.experiment, s.name, m.name AS metric, m.step, m.value
         FROM stages AS s LEFT JOIN metrics AS m ON m.stage_key = s.key AND m.step IS NOT NULL
         WHERE ",
    );
    scope.push_condition(&mut sql);
    sql.push(" AND (s.name = ")
        .push_bind(stage.to_string())
        .push(" OR s.experiment || '/' || s.name = ")
        .push_bind(stage.to_string())
        .push(" OR substr(s.name, 1, instr(s.name || '@', '@') - 1) = ")
        .push_bind(stage.to_string())
        .push(") ORDER BY s.experiment, s.name, m.step, m.name");
    let rows = sql
        .build()
        .fetch_all(store.reader())
        .await
        .with_context(|| format!("reading the curve of {stage} in {}", store.path().display()))?;
    if rows.is_empty() {
        let names: BTreeSet<String> = store
            .scoped_stages(scope)
            .await?
            .into_iter()
            .map(|s| format!("{}/{}", s.experiment, s.name))
            .collect();
        anyhow::bail!(
            "--curve {stage}: no current stage of that name (stages: {})",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut points: BTreeMap<(String, String, i64), BTreeMap<String, f64>> = BTreeMap::new();
    for row in &rows {
        let (Some(metric), Some(step)) = (
            row.try_get::<Option<String>, _>("metric")?,
            row.try_get::<Option<i64>, _>("step")?,
        ) else {
            continue;
        };
        let (experiment, name): (String, String) =
            (row.try_get("experiment")?, row.try_get("name")?);
        *counts
            .entry((experiment.clone(), name.clone(), metric.clone()))
            .or_default() += 1;
        let point = points.entry((experiment, name, step)).or_default();
        if let Some(value) = row.try_get::<Option<f64>, _>("value")? {
            point.insert(metric, value);
        }
    }
    let metrics: BTreeSet<String> = counts
        .into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|((_, _, metric), _)| metric)
        .collect();
    let mut columns = vec!["experiment".to_string(), "name".into(), "step".into()];
    columns.extend(metrics.iter().cloned());
    let rows = points
        .into_iter()
        .filter(|(_, values)| metrics.iter().any(|m| values.contains_key(m)))
        .map(|((experiment, name, step), values)| {
            let mut row = vec![
                Value::from(experiment),
                Value::from(name),
                Value::from(step),
            ];
            row.extend(
                metrics
                    .iter()
                    .map(|m| values.get(m).map_or(Value::Null, |v| Value::from(*v))),
            );
            row
        })
        .collect();
    Ok(Table { columns, rows })
}
