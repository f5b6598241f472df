//! `tables/tables.toml`: which tables a report holds, in order, and the labels of datasets and
//! metrics.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// How a table is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// Model presets: topology, computed vs reported parameters.
    Sizes,
    /// One dataset: metrics × model sizes.
    Dataset,
    /// Other methods' reported rows plus the study's models.
    Comparison,
    /// Scores per training-set fraction and size.
    Efficiency,
    /// The paper's claims (`claims.toml`), each checked against the reproduced cells.
    Claims,
}

/// A (dataset, metric) column of the comparison and efficiency tables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricColumn {
    /// Dataset format.
    pub dataset: String,
    /// Metric name.
    pub metric: String,
}

/// One table of the report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// File name and `--table` name.
    pub name: String,
    /// How it is built.
    pub kind: TableKind,
    /// Heading.
    pub title: String,
    /// Text under the heading.
    #[serde(default)]
    pub caption: String,
    /// `dataset` tables: the dataset format.
    #[serde(default)]
    pub dataset: Option<String>,
    /// `dataset` tables: metric rows (`f1.*` expands to every class scored).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// `comparison` and `efficiency` tables: their columns.
    #[serde(default)]
    pub columns: Vec<MetricColumn>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpecs {
    /// Dataset format → display name.
    #[serde(default)]
    pub datasets: BTreeMap<String, String>,
    /// Metric name → display name.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// Tables in order.
    #[serde(rename = "table")]
    pub tables: Vec<TableSpec>,
}

impl TableSpecs {
    /// Reads `path`; a `dataset` table without `dataset` or `metrics`, or a comparison or
    /// efficiency table without `columns`, is an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<TableSpecs> {
        let text = fs_err::read_to_string(path)?;
        let specs: TableSpecs = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid table list", path.display()))?;
        for table in &specs.tables {
            let ok = match table.kind {
                TableKind::Sizes | TableKind::Claims => true,
                TableKind::Dataset => table.dataset.is_some() && !table.metrics.is_empty(),
                TableKind::Comparison | TableKind::Efficiency => !table.columns.is_empty(),
            };
            anyhow::ensure!(
                ok,
                "{}: table `{}`: a `dataset` table needs `dataset` and `metrics`; `comparison` and `efficiency` tables need `columns`",
                path.display(),
                table.name
            );
        }
        Ok(specs)
    }

    /// Display name of a dataset format.
    pub fn dataset_label(&self, dataset: &str) -> String {
        self.datasets
            .get(dataset)
            .cloned()
            .unwrap_or_else(|| dataset.to_string())
    }

    /// Display name of a metric (`f1.car` → `F1 car`).
    pub fn metric_label(&self, metric: &str) -> String {
        if let Some(label) = self.metrics.get(metric) {
            return label.clone();
        }
        match metric.split_once('.') {
            Some((family, class)) => format!(
                "{} {}",
                family.to_uppercase().replace("IOU", "IoU"),
                class.replace('_', " ")
            ),
            None => metric.to_string(),
        }
    }
}
