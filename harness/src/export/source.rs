//! What an export reads from `rsfm.db`: per stage, its identity, parameters, times, curves (the
//! very table `rsfm results --curve` prints for it) and final metrics.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::wall_time::unix_millis;
use crate::query;
use crate::store::{StageScope, Store};

/// One stage as exporters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportStage {
    /// Content key: the run id in every tracker.
    pub key: String,
    /// Experiment (the recipe's `[experiment] name`).
    pub experiment: String,
    /// Stage name (`base@values` for matrix variants).
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Status in the store (`succeeded`, `cached`, `failed`, `interrupted`, `running`).
    pub status: String,
    /// Parameters, flattened (`a.b` for nested tables), then `matrix.X` and `seed`.
    pub params: Vec<(String, ParamValue)>,
    /// Start of the latest attempt, milliseconds since the Unix epoch.
    pub started_ms: Option<i64>,
    /// End of the latest attempt.
    pub finished_ms: Option<i64>,
    /// Metric name → (step, value) by ascending step: the columns of its `results --curve`.
    pub curves: BTreeMap<String, Vec<(i64, f64)>>,
    /// Final metrics (step NULL) by name.
    pub finals: BTreeMap<String, f64>,
}

/// A parameter value, typed as trackers type them.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number, as JSON wrote it (`4`, `0.001`).
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
    /// Text (strings as they are; lists and other values as JSON).
    Text(String),
}

impl ParamValue {
    /// The value as text: what MLflow stores.
    pub fn render(&self) -> String {
        match self {
            ParamValue::Number(n) => n.to_string(),
            ParamValue::Bool(b) => b.to_string(),
            ParamValue::Text(t) => t.clone(),
        }
    }
}

impl ExportStage {
    /// The last logged step of its curves (0 when it has none): where final metrics go.
    pub fn last_step(&self) -> i64 {
        self.curves
            .values()
            .filter_map(|points| points.last().map(|(step, _)| *step))
            .max()
            .unwrap_or(0)
    }

    /// The time every point carries: rsfm keeps no time per step, so the end of the stage's
    /// latest attempt (its start while it runs, 0 when neither is known).
    pub fn point_time_ms(&self) -> i64 {
        self.finished_ms.or(self.started_ms).unwrap_or(0)
    }

    /// How many values an export writes for it: curve points and final metrics.
    pub fn points(&self) -> usize {
        self.curves.values().map(Vec::len).sum::<usize>() + self.finals.len()
    }
}

/// The stages of `scope` that ran (every status but `pending` and `skipped`), by experiment and
/// name, each with its curves and final metrics.
pub async fn load_stages(store: &Store, scope: &StageScope) -> anyhow::Result<Vec<ExportStage>> {
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT key, experiment, name, kind, status, params, matrix, seed, started_at, finished_at
         FROM stages AS s WHERE status NOT IN ('pending', 'skipped') AND ",
    );
    scope.push_condition(&mut sql);
    sql.push(" ORDER BY experiment, name, key");
    let rows = sql
        .build()
        .fetch_all(store.reader())
        .await
        .with_context(|| format!("reading the stages of {}", store.path().display()))?;
    let mut stages = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get("key")?;
        let experiment: String = row.try_get("experiment")?;
        let name: String = row.try_get("name")?;
        let params = stage_params(
            &row.try_get::<String, _>("params")?,
            &row.try_get::<String, _>("matrix")?,
            row.try_get("seed")?,
        )
        .with_context(|| format!("parameters of stage {experiment}/{name} ({key})"))?;
        let started_ms = row
            .try_get::<Option<String>, _>("started_at")?
            .as_deref()
            .and_then(unix_millis);
        let finished_ms = row
            .try_get::<Option<String>, _>("finished_at")?
            .as_deref()
            .and_then(unix_millis);
        let curves = curves(store, &key, &experiment, &name).await?;
        let finals = final_metrics(store, &key).await?;
        stages.push(ExportStage {
            kind: row.try_get("kind")?,
            status: row.try_get("status")?,
            key,
            experiment,
            name,
            params,
            started_ms,
            finished_ms,
            curves,
            finals,
        });
    }
    Ok(stages)
}

/// The stage's curve exactly as `rsfm results --curve` selects it (metrics recorded at two
/// steps or more), one series per column, without its empty cells (a metric not logged at
/// that step, or NaN, which the store keeps as NULL).
async fn curves(
    store: &Store,
    key: &str,
    experiment: &str,
    name: &str,
) -> anyhow::Result<BTreeMap<String, Vec<(i64, f64)>>> {
    let scope = StageScope::current(Some(vec![key.to_string()]));
    let table = query::curve_table(store, &scope, &format!("{experiment}/{name}")).await?;
    let mut curves: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for row in &table.rows {
        let step = row
            .get(2)
            .and_then(Value::as_i64)
            .context("a curve row without a step")?;
        for (metric, cell) in table.columns.iter().zip(row).skip(3) {
            if let Some(value) = cell.as_f64() {
                curves
                    .entry(metric.clone())
                    .or_default()
                    .push((step, value));
            }
        }
    }
    Ok(curves)
}

/// Final metrics (step NULL) of the stage `key`; NaN (NULL) left out.
async fn final_metrics(store: &Store, key: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let rows = sqlx::query(
        "SELECT name, value FROM metrics WHERE stage_key = ? AND step IS NULL AND value IS NOT NULL",
    )
    .bind(key)
    .fetch_all(store.reader())
    .await
    .with_context(|| format!("reading the final metrics of {key} in {}", store.path().display()))?;
    rows.iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get("value")?)))
        .collect()
}

/// The stage's `params` JSON flattened, by name, then its matrix variables as `matrix.NAME` and its
/// seed.
fn stage_params(
    params: &str,
    matrix: &str,
    seed: Option<i64>,
) -> anyhow::Result<Vec<(String, ParamValue)>> {
    let mut out = Vec::new();
    let params: Value = serde_json::from_str(params).context("the params column is not JSON")?;
    flatten("", &params, &mut out);
    let matrix: Value = serde_json::from_str(matrix).context("the matrix column is not JSON")?;
    let mut variables = Vec::new();
    flatten("matrix", &matrix, &mut variables);
    // By name, whatever order the JSON objects iterate in.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    out.append(&mut variables);
    if let Some(seed) = seed {
        if !out.iter().any(|(name, _)| name == "seed") {
            out.push(("seed".into(), ParamValue::Number(seed.into())));
        }
    }
    Ok(out)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, ParamValue)>) {
    let joined = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    match value {
        Value::Object(map) => {
            for (name, value) in map {
                flatten(&joined(name), value, out);
            }
        }
        Value::Number(n) => out.push((prefix.to_string(), ParamValue::Number(n.clone()))),
        Value::Bool(b) => out.push((prefix.to_string(), ParamValue::Bool(*b))),
        Value::String(s) => out.push((prefix.to_string(), ParamValue::Text(s.clone()))),
        Value::Null | Value::Array(_) => {
            out.push((prefix.to_string(), ParamValue::Text(value.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: f64) -> ParamValue {
        ParamValue::Number(serde_json::Number::from_f64(n).unwrap())
    }

    #[test]
    fn params_flatten_with_dotted_names_then_matrix_and_seed() {
        let params = stage_params(
            r#"{"lr": 0.001, "model": {"depth": 2, "name": "vit-tiny"}, "flip": true, "sizes": [1, 2]}"#,
            r#"{"fraction": 0.25}"#,
            Some(7),
        )
        .unwrap();
        assert_eq!(
            params,
            [
                ("flip".to_string(), ParamValue::Bool(true)),
                ("lr".into(), number(0.001)),
                ("model.depth".into(), ParamValue::Number(2.into())),
                ("model.name".into(), ParamValue::Text("vit-tiny".into())),
                ("sizes".into(), ParamValue::Text("[1,2]".into())),
                ("matrix.fraction".into(), number(0.25)),
                ("seed".into(), ParamValue::Number(7.into())),
            ]
        );
        assert_eq!(params[1].1.render(), "0.001");
        assert_eq!(params[2].1.render(), "2");
    }

    #[test]
    fn a_seed_parameter_is_not_repeated() {
        let params = stage_params(r#"{"seed": 3}"#, "{}", Some(3)).unwrap();
        assert_eq!(params, [("seed".to_string(), ParamValue::Number(3.into()))]);
    }
}
