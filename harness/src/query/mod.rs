//! The results query layer: stages joined with their metrics, filtered without ever putting
//! user text into SQL.

mod curve;
mod stream;
pub(crate) mod table;
mod where_expr;
mod wide;

use anyhow::Context;
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite};

pub use curve::curve_table;
pub use stream::RowWriter;
pub use table::{
    for_terminal, for_terminal_lines, format_number, short_key, OutputFormat, Table, KEY_PREFIX_LEN,
};
pub use where_expr::{Column, Literal, WhereError, WhereExpr};
pub use wide::{wide_table, WideOptions};

use crate::store::{StageScope, Store};

/// Which results to list: each set field must match exactly; `filter` is a parsed `--where`;
/// `scope` says which rows of each stage count (by default the current ones).
#[derive(Debug, Clone, Default)]
pub struct ResultsQuery {
    /// Current rows only (default), the keys of given recipes, or the whole history.
    pub scope: StageScope,
    /// Only this experiment.
    pub experiment: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this task.
    pub task: Option<String>,
    /// Only this dataset.
    pub dataset: Option<String>,
    /// Only this metric.
    pub metric: Option<String>,
    /// A `--where` expression.
    pub filter: Option<WhereExpr>,
    /// Include values recorded at training steps, not only final metrics (step NULL).
    pub include_steps: bool,
}

/// One metric value of one stage: a row of `rsfm results`.
///
/// `rsfm results --format json` prints an array of these objects, fields in this order:
/// `{"experiment": str, "name": str, "key": str, "kind": str, "model": str|null, "task": str|null,
/// "dataset": str|null, "fraction": number|null, "split": str|null, "protocol": str|null,
/// "seed": int|null, "status": str, "state": str,
/// "finished_at": str|null, "metric": str, "value": number|null, "step": int|null}`. `value` is
/// null where the stage reported NaN. `status` says how the result was produced (`succeeded`:
/// this results dir ran it); `state` is `current`, `superseded` (an older key of the stage) or
/// `gone` (its cache entry was removed). `split` and `protocol` are an evaluation's (`val`,
/// `ap=voc07 iou=0.5 protocol=devkit classes=v2.0`), null for other stages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    /// Experiment name.
    pub experiment: String,
    /// Stage name.
    pub name: String,
    /// Stage content key.
    pub key: String,
    /// Stage kind.
    pub kind: String,
    /// Model coordinate.
    pub model: Option<String>,
    /// Task coordinate.
    pub task: Option<String>,
    /// Dataset coordinate.
    pub dataset: Option<String>,
    /// Data fraction.
    pub fraction: Option<f64>,
    /// The split an evaluation scored.
    pub split: Option<String>,
    /// The settings an evaluation scored under.
    pub protocol: Option<String>,
    /// Seed (matrix variable `seed`, else parameter `seed`).
    pub seed: Option<i64>,
    /// Stage status: how its result was produced.
    pub status: String,
    /// `current`, `superseded` or `gone`.
    pub state: String,
    /// End of the attempt that produced the row.
    pub finished_at: Option<String>,
    /// Metric name.
    pub metric: String,
    /// Metric value.
    pub value: Option<f64>,
    /// Training step, null for a final metric.
    pub step: Option<i64>,
}

/// Column names of [`ResultRow`], in field order.
const RESULT_COLUMNS: [&str; 17] = [
    "experiment",
    "name",
    "key",
    "kind",
    "model",
    "task",
    "dataset",
    "fraction",
    "split",
    "protocol",
    "seed",
    "status",
    "state",
    "finished_at",
    "metric",
    "value",
    "step",
];

/// The results matching `query`, ordered by experiment, stage name, metric and step.
pub async fn results(store: &Store, query: &ResultsQuery) -> anyhow::Result<Vec<ResultRow>> {
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "SELECT s.experiment, s.name, s.key, s.kind, s.model, s.task, s.dataset, s.fraction, s.split,
                s.protocol, {} AS seed,
                s.status, ",
        where_expr::SEED_SQL
    ));
    query.scope.push_state(&mut sql);
    sql.push(
        " AS state, s.finished_at, m.name AS metric, m.value, m.step
         FROM metrics AS m JOIN stages AS s ON s.key = m.stage_key WHERE ",
    );
    query.scope.push_condition(&mut sql);
    if !query.include_steps {
        sql.push(" AND m.step IS NULL");
    }
    let exact = [
        ("s.experiment", &query.experiment),
        ("s.model", &query.model),
        ("s.task", &query.task),
        ("s.dataset", &query.dataset),
        ("m.name", &query.metric),
    ];
    for (column, value) in exact {
        if let Some(value) = value {
            sql.push(format!(" AND {column} = "))
                .push_bind(value.clone());
        }
    }
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        filter.push_sql(&mut sql);
    }
    sql.push(" ORDER BY s.experiment, s.name, s.last_used_at, s.key, m.name, m.step");
    let rows = sql
        .build()
        .fetch_all(store.reader())
        .await
        .with_context(|| format!("querying results in {}", store.path().display()))?;
    rows.iter()
        .map(|row| {
            Ok(ResultRow {
                experiment: row.try_get("experiment")?,
                name: row.try_get("name")?,
                key: row.try_get("key")?,
                kind: row.try_get("kind")?,
                model: row.try_get("model")?,
                task: row.try_get("task")?,
                dataset: row.try_get("dataset")?,
                fraction: row.try_get("fraction")?,
                split: row.try_get("split")?,
                protocol: row.try_get("protocol")?,
                seed: row.try_get("seed")?,
                status: row.try_get("status")?,
                state: row.try_get("state")?,
                finished_at: row.try_get("finished_at")?,
                metric: row.try_get("metric")?,
                value: row.try_get("value")?,
                step: row.try_get("step")?,
            })
        })
        .collect()
}

/// `rows` as a [`Table`] with the columns of [`ResultRow`].
pub fn results_table(rows: &[ResultRow]) -> anyhow::Result<Table> {
    let rows = rows
        .iter()
        .map(|row| match serde_json::to_value(row)? {
            serde_json::Value::Object(mut fields) => Ok(RESULT_COLUMNS
                .iter()
                .map(|c| fields.remove(*c).unwrap_or_default())
                .collect()),
            other => anyhow::bail!("a result row serialised to {other} instead of an object"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Table {
        columns: RESULT_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    })
}
