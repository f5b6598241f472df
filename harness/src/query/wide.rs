//! The wide view of `rsfm results --wide`: one row per stage, its varying matrix variables and
//! parameters and its final metrics as columns (as `dvc exp show` lays out experiments).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{ResultRow, Table};
use crate::store::Store;

/// Columns every wide row starts with, from [`ResultRow`].
const STAGE_COLUMNS: [&str; 9] = [
    "experiment",
    "name",
    "key",
    "model",
    "task",
    "dataset",
    "fraction",
    "seed",
    "status",
];

/// How to order and cut the wide view.
#[derive(Debug, Clone, Default)]
pub struct WideOptions {
    /// Sort by this column (a metric, `params.X`, `matrix.X` or a stage column).
    pub sort: Option<String>,
    /// Sort descending.
    pub descending: bool,
    /// Keep the first rows only.
    pub limit: Option<usize>,
    /// Add the `state` and `finished_at` columns (for history listings).
    pub history: bool,
}

/// The wide table of `rows` (final metrics; step rows are ignored): stage columns, then each
/// `matrix.X` and `params.X` whose value differs between the stages of one kind shown
/// ([`varying_columns`]), then one column per metric. Sorting puts missing values last.
pub async fn wide_table(
    store: &Store,
    rows: &[ResultRow],
    options: &WideOptions,
) -> anyhow::Result<Table> {
    let mut stages: Vec<(&ResultRow, BTreeMap<String, Value>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut metrics: BTreeSet<String> = BTreeSet::new();
    for row in rows.iter().filter(|r| r.step.is_none()) {
        let i = *index.entry(row.key.as_str()).or_insert_with(|| {
            stages.push((row, BTreeMap::new()));
            stages.len() - 1
        });
        metrics.insert(row.metric.clone());
        stages[i].1.insert(
            row.metric.clone(),
            row.value.map_or(Value::Null, Value::from),
        );
    }
    let keys: Vec<String> = stages.iter().map(|(r, _)| r.key.clone()).collect();
    let documents = stage_documents(store, &keys).await?;
    let flat: Vec<BTreeMap<String, Value>> = keys
        .iter()
        .map(|k| documents.get(k).cloned().unwrap_or_default())
        .collect();
    let kinds: Vec<&str> = stages.iter().map(|(r, _)| r.kind.as_str()).collect();
    let varying = varying_columns(&kinds, &flat);
    let mut columns: Vec<String> = STAGE_COLUMNS.iter().map(|c| c.to_string()).collect();
    if options.history {
        columns.extend(["state".to_string(), "finished_at".to_string()]);
    }
    columns.extend(varying.iter().cloned());
    columns.extend(metrics.iter().cloned());
    let mut table_rows: Vec<Vec<Value>> = stages
        .iter()
        .zip(&flat)
        .map(|((row, values), documents)| {
            let fields = match serde_json::to_value(row) {
                Ok(Value::Object(fields)) => fields,
                _ => serde_json::Map::new(),
            };
            columns
                .iter()
                .map(|c| {
                    fields
                        .get(c.as_str())
                        .filter(|_| !metrics.contains(c) && !varying.contains(c))
                        .or_else(|| documents.get(c))
                        .or_else(|| values.get(c))
                        .cloned()
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect();
    if let Some(sort) = &options.sort {
        let column = columns.iter().position(|c| c == sort).with_context(|| {
            format!(
                "--sort {sort}: no such column (columns: {})",
                columns.join(", ")
            )
        })?;
        table_rows.sort_by(|a, b| compare_cells(&a[column], &b[column], options.descending));
    }
    if let Some(limit) = options.limit {
        table_rows.truncate(limit);
    }
    Ok(Table {
        columns,
        rows: table_rows,
    })
}

/// The `matrix.X` / `params.X` names whose value differs between stages of one kind (`kinds[i]`
/// is the kind of the stage of `flat[i]`). A parameter that one kind has and another lacks, or
/// whose values differ only from kind to kind (a pretraining's steps beside a fine-tuning's),
/// is not a difference between the runs a user compares.
fn varying_columns(kinds: &[&str], flat: &[BTreeMap<String, Value>]) -> Vec<String> {
    let mut names_of_kind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (kind, document) in kinds.iter().zip(flat) {
        names_of_kind
            .entry(kind)
            .or_default()
            .extend(document.keys().map(String::as_str));
    }
    let mut values: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    for (kind, document) in kinds.iter().zip(flat) {
        for &name in &names_of_kind[kind] {
            let value = document.get(name).map_or("null".into(), Value::to_string);
            values.entry((kind, name)).or_default().insert(value);
        }
    }
    values
        .into_iter()
        .filter(|(_, seen)| seen.len() > 1)
        .map(|((_, name), _)| name.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Orders two cells: numbers numerically, text lexically, nulls last in either direction.
fn compare_cells(a: &Value, b: &Value, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ordered = match (a, b) {
        (Value::Null, Value::Null) => return Ordering::Equal,
        (Value::Null, _) => return Ordering::Greater,
        (_, Value::Null) => return Ordering::Less,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (x, y) => x.to_string().cmp(&y.to_string()),
    };
    if descending {
        ordered.reverse()
    } else {
        ordered
    }
}

/// `matrix.X` and `params.X` (nested tables dotted, scalars only) of each stage in `keys`.
async fn stage_documents(
    store: &Store,
    keys: &[String],
) -> anyhow::Result<HashMap<String, BTreeMap<String, Value>>> {
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT key, matrix, params FROM stages WHERE key IN (SELECT value FROM json_each(",
    );
    sql.push_bind(Value::from(keys.to_vec()).to_string())
        .push("))");
    let rows = sql
        .build()
        .fetch_all(store.reader())
        .await
        .with_context(|| format!("reading stage parameters in {}", store.path().display()))?;
    let mut out = HashMap::new();
    for row in &rows {
        let mut flat = BTreeMap::new();
        for (prefix, column) in [("matrix", "matrix"), ("params", "params")] {
            let text: String = row.try_get(column)?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            flatten(prefix, &value, &mut flat);
        }
        out.insert(row.try_get::<String, _>("key")?, flat);
    }
    Ok(out)
}

/// Scalar leaves of `value` under dotted names; arrays are kept whole as one cell.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(fields) => {
            for (name, inner) in fields {
                flatten(&format!("{prefix}.{name}"), inner, out);
            }
        }
        Value::Array(_) => {
            out.insert(prefix.to_string(), Value::from(value.to_string()));
        }
        scalar => {
            out.insert(prefix.to_string(), scalar.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_values_that_differ_within_a_kind_are_columns() {
        let doc = |pairs: &[(&str, Value)]| -> BTreeMap<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let kinds = ["mae-pretrain", "finetune-seg", "finetune-seg"];
        let flat = [
            doc(&[
                ("params.steps", json!(100)),
                ("params.mask_ratio", json!(0.75)),
            ]),
            doc(&[("params.steps", json!(300)), ("matrix.lr", json!(0.001))]),
            doc(&[("params.steps", json!(300)), ("matrix.lr", json!(0.003))]),
        ];
        assert_eq!(
            varying_columns(&kinds, &flat),
            vec!["matrix.lr".to_string()]
        );
        // Within one kind, a value set on one stage and unset on another differs.
        let flat = [doc(&[]), doc(&[("params.lr", json!(0.1))]), doc(&[])];
        assert_eq!(
            varying_columns(&kinds, &flat),
            vec!["params.lr".to_string()]
        );
    }

    #[test]
    fn nulls_sort_last_both_ways() {
        let mut cells = vec![json!(2.0), json!(null), json!(10), json!(1.5)];
        cells.sort_by(|a, b| compare_cells(a, b, false));
        assert_eq!(cells, vec![json!(1.5), json!(2.0), json!(10), json!(null)]);
        cells.sort_by(|a, b| compare_cells(a, b, true));
        assert_eq!(cells, vec![json!(10), json!(2.0), json!(1.5), json!(null)]);
    }
}
