//! `reported.toml`: the numbers others report for the study's cells, each with its source, and
//! the tolerance a reproduction must meet. Read at report time, so an added value shows on the
//! next `rsfm report` without rerunning any stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::store::ReportedRow;

/// A reported number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedValue {
    /// The dataset format it scores: `dota`, `dior-r`, `potsdam`, `loveda`.
    pub dataset: String,
    /// Metric name as the study stores it: `map`, `oa`, `mf1`, `miou`, `f1.<class>`.
    pub metric: String,
    /// A model preset of the study: the paper's own number for that size.
    #[serde(default)]
    pub model: Option<String>,
    /// Another method's name (comparison rows).
    #[serde(default)]
    pub method: Option<String>,
    /// Training-set fraction it was measured at (default 1: the full set).
    #[serde(default = "full_set")]
    pub fraction: f64,
    /// The split it was scored on: `val`, `test` (labels public, scored locally) or
    /// `test-server` (the benchmark's evaluation server) (default `test`). A reproduction of
    /// another split is shown beside it without a verdict.
    #[serde(default = "test_split")]
    pub split: String,
    /// The settings it was scored under, as `name=value` pairs in the form the study records
    /// (`ap=voc12`, `labels=eroded`); unset: not known. A reproduction that differs in a
    /// setting both name is shown beside it without a verdict.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The value in percent.
    pub value: f64,
    /// Where it comes from.
    pub source: String,
    /// Conflicts between sources, or how a column was read.
    #[serde(default)]
    pub note: Option<String>,
}

fn full_set() -> f64 {
    1.0
}

fn test_split() -> String {
    "test".into()
}

/// The splits a reported value may name.
pub const SPLITS: [&str; 3] = ["val", "test", "test-server"];

impl ReportedValue {
    /// The row label: the model preset or the method.
    pub fn row(&self) -> &str {
        self.model
            .as_deref()
            .or(self.method.as_deref())
            .unwrap_or("")
    }
}

/// How far a reproduction may fall from the reported value, in points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Points of difference still counted as reproduced.
    pub value: f64,
    /// Why this much.
    pub source: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportedFile {
    /// Metric name (or its family before the dot: `f1`, `iou`) → tolerance.
    #[serde(default)]
    pub tolerance: BTreeMap<String, Tolerance>,
    /// The reported values.
    #[serde(default, rename = "value")]
    pub values: Vec<ReportedValue>,
    /// The file read.
    #[serde(skip)]
    pub path: PathBuf,
}

impl ReportedFile {
    /// Reads and checks `path`: each value names a model or a method (not both), is finite and
    /// not zero (an unknown cell is left out, never written as 0), and appears once.
    pub fn load(path: &Path) -> anyhow::Result<ReportedFile> {
        let text = fs_err::read_to_string(path)?;
        let mut file: ReportedFile = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid reported-values file", path.display()))?;
        file.path = path.to_path_buf();
        let mut seen = BTreeMap::new();
        for (index, value) in file.values.iter().enumerate() {
            let at = format!(
                "{}: [[value]] #{} ({} {})",
                path.display(),
                index + 1,
                value.dataset,
                value.metric
            );
            anyhow::ensure!(
                value.model.is_some() != value.method.is_some(),
                "{at}: set exactly one of `model` (a preset of the study) or `method` (another method's name)"
            );
            anyhow::ensure!(
                SPLITS.contains(&value.split.as_str()),
                "{at}: split `{}` is not one of {}",
                value.split,
                SPLITS.join(", ")
            );
            anyhow::ensure!(
                value.value.is_finite() && value.value != 0.0,
                "{at}: value {} is not a reported number; leave unknown cells out instead of writing 0",
                value.value
            );
            let cell = (
                value.dataset.clone(),
                value.metric.clone(),
                value.row().to_string(),
                value.fraction.to_bits(),
            );
            if let Some(first) = seen.insert(cell, index + 1) {
                anyhow::bail!("{at}: the same cell as [[value]] #{first}; keep one and put the other in its `note`");
            }
        }
        for (metric, tolerance) in &file.tolerance {
            anyhow::ensure!(
                tolerance.value.is_finite() && tolerance.value >= 0.0,
                "{}: [tolerance] {metric} must be a number of points ≥ 0",
                path.display()
            );
        }
        Ok(file)
    }

    /// The tolerance of `metric`: its own, else its family's (`f1` for `f1.car`).
    pub fn tolerance(&self, metric: &str) -> Option<&Tolerance> {
        self.tolerance.get(metric).or_else(|| {
            metric
                .split_once('.')
                .and_then(|(family, _)| self.tolerance.get(family))
        })
    }

    /// The reported value of one cell.
    pub fn find(
        &self,
        dataset: &str,
        metric: &str,
        row: &str,
        fraction: f64,
    ) -> Option<&ReportedValue> {
        self.values.iter().find(|v| {
            v.dataset == dataset
                && v.metric == metric
                && v.row() == row
                && (v.fraction - fraction).abs() < 1e-9
        })
    }

    /// The values as rows of the store's `reported` table: table = dataset, row = model or
    /// method (with `@fraction` below 1), column = metric; the source carries the note.
    pub fn store_rows(&self) -> Vec<ReportedRow> {
        self.values
            .iter()
            .map(|v| ReportedRow {
                table_name: v.dataset.clone(),
                row: if v.fraction < 1.0 {
                    format!("{}@{}", v.row(), v.fraction)
                } else {
                    v.row().to_string()
                },
                col: v.metric.clone(),
                value: Some(v.value),
                source: Some(match &v.note {
                    Some(note) => format!("{} ({note})", v.source),
                    None => v.source.clone(),
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> anyhow::Result<ReportedFile> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reported.toml");
        std::fs::write(&path, text).unwrap();
        ReportedFile::load(&path)
    }

    #[test]
    fn the_study_file_loads_with_its_conflicts_noted() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/paper/reported.toml");
        let file = ReportedFile::load(&path).unwrap();
        let dior = file.find("dior-r", "map", "vit-2.4b", 1.0).unwrap();
        assert_eq!(dior.value, 73.60);
        assert!(dior.note.as_deref().unwrap().contains("73.62"));
        assert_eq!(
            file.find("potsdam", "oa", "vit-2.4b", 1.0).unwrap().value,
            92.58
        );
        assert!(file.find("dota", "map", "vit-b", 1.0).is_none());
        assert!(file.tolerance("f1.car").is_some());
    }

    #[test]
    fn zero_and_duplicate_cells_are_refused() {
        let zero = "[[value]]\ndataset = \"dota\"\nmetric = \"map\"\nmodel = \"vit-b\"\nvalue = 0.0\nsource = \"x\"\n";
        assert!(load(zero)
            .unwrap_err()
            .to_string()
            .contains("leave unknown cells out"));
        let one = "[[value]]\ndataset = \"dota\"\nmetric = \"map\"\nmethod = \"m\"\nvalue = 1.0\nsource = \"x\"\n";
        let err = load(&format!("{one}{one}")).unwrap_err().to_string();
        assert!(err.contains("#2") && err.contains("#1"), "{err}");
        let both = "[[value]]\ndataset = \"dota\"\nmetric = \"map\"\nmethod = \"m\"\nmodel = \"vit-b\"\nvalue = 1.0\nsource = \"x\"\n";
        assert!(load(both).unwrap_err().to_string().contains("exactly one"));
    }
}
