//! The report's tables, built from the table list, the plan's current observations and the
//! reported values, as views the templates render.

use serde::Serialize;

use super::cells::{fmt, percent, Cell, CellView, Reported, Stat};
use super::claims::{self as claim_checks, ClaimsFile};
use super::lineage::{Observation, Rescore};
use super::models::ModelInfo;
use super::reported_file::ReportedFile;
use super::spec::{MetricColumn, TableKind, TableSpec, TableSpecs};
pub(super) use crate::param_count::human;

/// A rendered-ready table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableView {
    /// File name and `--table` name.
    pub name: String,
    /// Heading.
    pub title: String,
    /// Text under the heading.
    pub caption: String,
    /// Label of the row-label column.
    pub corner: String,
    /// Column labels.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<RowView>,
    /// Footnotes: the assumptions behind the cells marked ⚠N, numbered from 1.
    pub notes: Vec<String>,
    /// Where each filled cell came from: evaluation stage, seed and key.
    pub provenance: Vec<String>,
    /// What another scoring protocol alone changes: per rescore setting and metric, the mean
    /// Δ (rescored − scored) of each size, from `rescore-*` stages (no retraining).
    pub sensitivity: Vec<String>,
}

/// One row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowView {
    /// Its label.
    pub label: String,
    /// Its cells, one per column.
    pub cells: Vec<CellView>,
}

/// What every table draws from.
pub struct Inputs<'a> {
    /// Tables and labels.
    pub specs: &'a TableSpecs,
    /// Reported values and tolerances.
    pub reported: &'a ReportedFile,
    /// The plan's evaluations with their metrics.
    pub observations: &'a [Observation],
    /// The study's model presets, smallest first.
    pub models: &'a [ModelInfo],
    /// The paper's claims.
    pub claims: &'a ClaimsFile,
    /// The plan's rescores of its evaluations, with their metrics.
    pub rescores: &'a [Rescore],
    /// GPU-hours (H100) of each training stage, by `experiment/stage` (`plan --estimate`).
    pub gpu_hours: &'a std::collections::HashMap<String, f64>,
    /// Whether cells carry Δ and verdicts (paper scale only).
    pub verdicts: bool,
}

impl Inputs<'_> {
    /// Whether some evaluation of the plan (run or not) scores `dataset`: only then can a
    /// column, row or claim of that dataset get a reproduced value.
    pub fn scores(&self, dataset: &str) -> bool {
        self.observations.iter().any(|o| o.dataset == dataset)
    }

    /// The columns of `spec` whose dataset some evaluation of the plan scores.
    fn scored_columns<'s>(&self, spec: &'s TableSpec) -> Vec<&'s MetricColumn> {
        spec.columns
            .iter()
            .filter(|c| self.scores(&c.dataset))
            .collect()
    }

    /// The claims about a dataset some evaluation of the plan scores.
    fn scored_claims(&self) -> impl Iterator<Item = &claim_checks::Claim> {
        self.claims
            .claims
            .iter()
            .filter(|claim| self.scores(&claim.dataset))
    }
}

/// Whether some stage of the plan can fill `spec`: a sizes table needs a model, a dataset
/// table an evaluation of its dataset, a comparison or efficiency table one of its columns'
/// datasets, a claims table one claim's dataset. The others are left out of the report.
pub fn fillable(spec: &TableSpec, inputs: &Inputs<'_>) -> bool {
    match spec.kind {
        TableKind::Sizes => !inputs.models.is_empty(),
        TableKind::Dataset => spec.dataset.as_deref().is_some_and(|d| inputs.scores(d)),
        TableKind::Comparison | TableKind::Efficiency => !inputs.scored_columns(spec).is_empty(),
        TableKind::Claims => inputs.scored_claims().next().is_some(),
    }
}

/// Numbered footnotes and provenance lines of one table under construction.
#[derive(Default)]
struct Notes {
    notes: Vec<String>,
    provenance: Vec<String>,
}

impl Notes {
    /// The footnote number of `assumptions` (0 for none), adding it if new.
    fn note(&mut self, assumptions: &[String]) -> usize {
        if assumptions.is_empty() {
            return 0;
        }
        let text = assumptions.join("; ");
        match self.notes.iter().position(|n| *n == text) {
            Some(i) => i + 1,
            None => {
                self.notes.push(text);
                self.notes.len()
            }
        }
    }

    fn provenance(&mut self, observation: &Observation) {
        let line = format!(
            "{} ({}, fraction {}, seed {}): {} key {}",
            observation.dataset,
            observation.model,
            observation.fraction,
            observation.seed,
            observation.stage,
            &observation.key[..12]
        );
        if !self.provenance.contains(&line) {
            self.provenance.push(line);
        }
    }
}

/// Builds `spec` from `inputs`.
pub fn build(spec: &TableSpec, inputs: &Inputs<'_>) -> TableView {
    let mut notes = Notes::default();
    let (corner, columns, rows) = match spec.kind {
        TableKind::Sizes => sizes(inputs, &mut notes),
        TableKind::Dataset => dataset(spec, inputs, &mut notes),
        TableKind::Comparison => comparison(spec, inputs, &mut notes),
        TableKind::Efficiency => efficiency(spec, inputs, &mut notes),
        TableKind::Claims => claims(inputs),
    };
    let mut caption = spec.caption.clone();
    let per_class_f1 = spec.metrics.iter().any(|m| m.starts_with("f1."));
    if per_class_f1 && spec.metrics.iter().any(|m| m == "mf1") {
        caption = format!("{caption} {MF1_NOTE}");
    }
    if inputs.verdicts && spec.kind != TableKind::Sizes {
        caption = format!("{caption} {}", super::cells::VERDICT_METHOD);
    }
    let caption = caption.trim().to_string();
    TableView {
        name: spec.name.clone(),
        title: spec.title.clone(),
        caption,
        corner,
        columns,
        rows,
        notes: notes.notes,
        provenance: notes.provenance,
        sensitivity: match (spec.kind, &spec.dataset) {
            (TableKind::Dataset, Some(dataset)) => sensitivity(inputs, dataset, &spec.metrics),
            _ => Vec::new(),
        },
    }
}

type Body = (String, Vec<String>, Vec<RowView>);

/// Why mF1 need not be the mean of the per-class F1 rows.
const MF1_NOTE: &str = "mF1 is MMSegmentation's mean F-score: a class without a true positive has an undefined F-score (0/0) and is left out of the mean, while its F1 row shows 2·IoU/(1+IoU) = 0.00, so mF1 is then not the mean of the rows shown.";

fn sizes(inputs: &Inputs<'_>, notes: &mut Notes) -> Body {
    let columns = [
        "blocks", "width", "heads", "MLP", "computed", "reported", "gap",
    ]
    .map(String::from)
    .to_vec();
    let rows = inputs
        .models
        .iter()
        .map(|model| {
            let p = &model.params;
            let note = notes.note(&model.assumptions);
            let blocks = if p.parallel > 1 {
                format!("{}×{}", p.depth, p.parallel)
            } else {
                p.depth.to_string()
            };
            let mut computed = CellView::text(human(p.computed as f64));
            if note > 0 {
                computed.summary += &format!(" ⚠{note}");
                computed.note = note;
            }
            let reported = match (p.reported, &p.reported_source) {
                (Some(value), source) => CellView {
                    title: source.clone().unwrap_or_default(),
                    ..CellView::text(human(value))
                },
                (None, _) => CellView::text("—"),
            };
            let gap = p
                .gap_percent
                .map_or("—".to_string(), |g| format!("{}%", fmt(g)));
            RowView {
                label: p.model.clone(),
                cells: vec![
                    CellView::text(blocks),
                    CellView::text(p.embed_dim.to_string()),
                    CellView::text(format!("{} × {}", p.num_heads, p.head_dim)),
                    CellView::text(p.mlp_hidden_dim.to_string()),
                    computed,
                    reported,
                    CellView::text(gap),
                ],
            }
        })
        .collect();
    ("model".to_string(), columns, rows)
}

/// The metric rows of a dataset table: `f1.*` and `iou.*` expand to the classes scored.
fn expand_metrics(patterns: &[String], dataset: &str, observations: &[Observation]) -> Vec<String> {
    let mut classes: Vec<String> = observations
        .iter()
        .filter(|o| o.dataset == dataset)
        .filter_map(|o| o.metrics.as_ref())
        .flat_map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("iou.").map(String::from))
        })
        .collect();
    classes.sort();
    classes.dedup();
    patterns
        .iter()
        .flat_map(|pattern| match pattern.strip_suffix(".*") {
            Some(family) => classes.iter().map(|c| format!("{family}.{c}")).collect(),
            None => vec![pattern.clone()],
        })
        .collect()
}

/// The study's cell for (`dataset`, `metric`, `model`, `fraction`): every seed that ran, of
/// one split: the reported value's where some run scored it (a test-server score `rsfm ingest`
/// read beside a val score), else the first run's.
fn study_cell(
    inputs: &Inputs<'_>,
    notes: &mut Notes,
    column: &MetricColumn,
    model: &str,
    fraction: f64,
) -> CellView {
    let reported = inputs
        .reported
        .find(&column.dataset, &column.metric, model, fraction);
    let scored: Vec<&Observation> = inputs
        .observations
        .iter()
        .filter(|o| {
            o.dataset == column.dataset && o.model == model && (o.fraction - fraction).abs() < 1e-9
        })
        .filter(|o| {
            o.metrics
                .as_ref()
                .is_some_and(|m| percent(m, &column.metric).is_some())
        })
        .collect();
    let split = reported
        .map(|r| r.split.as_str())
        .filter(|s| scored.iter().any(|o| o.split == *s))
        .or_else(|| scored.first().map(|o| o.split));
    let runs: Vec<&Observation> = scored
        .into_iter()
        .filter(|o| Some(o.split) == split)
        .collect();
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|o| percent(o.metrics.as_ref()?, &column.metric))
        .collect();
    let mut assumptions: Vec<String> = Vec::new();
    if !values.is_empty() {
        for run in &runs {
            notes.provenance(run);
            assumptions.extend(run.assumptions.iter().cloned());
        }
    }
    assumptions.sort();
    assumptions.dedup();
    let mixed = differences(&runs);
    let cell = Cell {
        mixed,
        split: runs.first().map(|o| o.split.to_string()),
        protocol: runs.first().map(|o| o.protocol.clone()),
        seed_gpu_hours: runs
            .first()
            .and_then(|o| inputs.gpu_hours.get(&o.finetune))
            .copied(),
        reproduced: Stat::of(&values),
        reported: reported.map(|r| Reported {
            value: r.value,
            source: match &r.note {
                Some(note) => format!("{} ({note})", r.source),
                None => r.source.clone(),
            },
            split: r.split.clone(),
            protocol: r.protocol.clone(),
        }),
        tolerance: inputs.reported.tolerance(&column.metric).map(|t| t.value),
        keys: runs.iter().map(|o| o.key[..12].to_string()).collect(),
        assumptions,
    };
    let note = notes.note(&cell.assumptions);
    cell.view(inputs.verdicts, note)
}

/// One line per (rescore setting, headline metric) of `dataset`: the mean Δ, rescored minus
/// scored, of each size on the full training set.
fn sensitivity(inputs: &Inputs<'_>, dataset: &str, metrics: &[String]) -> Vec<String> {
    let mut settings: Vec<&str> = Vec::new();
    for rescore in inputs.rescores {
        let scored = inputs
            .observations
            .iter()
            .any(|o| o.key == rescore.evaluation && o.dataset == dataset);
        if scored && !settings.contains(&rescore.settings.as_str()) {
            settings.push(&rescore.settings);
        }
    }
    let mut lines = Vec::new();
    for setting in settings {
        for metric in metrics.iter().filter(|m| !m.contains('.')) {
            let per_size: Vec<String> = inputs
                .models
                .iter()
                .filter_map(|model| {
                    let deltas: Vec<f64> = inputs
                        .observations
                        .iter()
                        .filter(|o| o.dataset == dataset && o.model == model.params.model)
                        .filter(|o| (o.fraction - 1.0).abs() < 1e-9)
                        .flat_map(|o| {
                            inputs
                                .rescores
                                .iter()
                                .filter(move |r| r.evaluation == o.key && r.settings == setting)
                                .filter_map(move |r| {
                                    let scored = percent(o.metrics.as_ref()?, metric)?;
                                    Some(percent(r.metrics.as_ref()?, metric)? - scored)
                                })
                        })
                        .collect();
                    (!deltas.is_empty()).then(|| {
                        let mean = deltas.iter().sum::<f64>() / deltas.len() as f64;
                        let sign = if mean >= 0.0 { "+" } else { "" };
                        format!("Δ {sign}{} ({})", fmt(mean), model.params.model)
                    })
                })
                .collect();
            if !per_size.is_empty() {
                lines.push(format!(
                    "{setting}: {} {}",
                    inputs.specs.metric_label(metric),
                    per_size.join(", ")
                ));
            }
        }
    }
    lines
}

/// What the runs of one cell differ in besides the seed (values of the matrix axes they all
/// have, the code, the scoring protocol), as `lr differs (0.001, 0.003)`; `None` when they are seeds of one setting.
fn differences(runs: &[&Observation]) -> Option<String> {
    let mut axes: Vec<&str> = runs
        .iter()
        .flat_map(|o| o.settings.iter().map(|(axis, _)| axis.as_str()))
        .collect();
    axes.sort();
    axes.dedup();
    let mut compared: Vec<(&str, Vec<&str>)> = Vec::new();
    for axis in axes {
        // An axis only some runs have (recipes with other matrices) is not compared.
        let values = runs
            .iter()
            .map(|o| {
                o.settings
                    .iter()
                    .find(|(a, _)| a == axis)
                    .map(|(_, v)| v.as_str())
            })
            .collect::<Option<Vec<&str>>>();
        if let Some(values) = values {
            compared.push((axis, values));
        }
    }
    compared.push(("code", runs.iter().map(|o| o.code.as_str()).collect()));
    compared.push((
        "protocol",
        runs.iter().map(|o| o.protocol.as_str()).collect(),
    ));
    let parts: Vec<String> = compared
        .into_iter()
        .filter_map(|(what, mut values)| {
            values.sort();
            values.dedup();
            (values.len() > 1).then(|| format!("{what} differs ({})", values.join(", ")))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn dataset(spec: &TableSpec, inputs: &Inputs<'_>, notes: &mut Notes) -> Body {
    let dataset = spec.dataset.clone().unwrap_or_default();
    let metrics = expand_metrics(&spec.metrics, &dataset, inputs.observations);
    let columns = inputs.models.iter().map(|m| m.label()).collect();
    let rows = metrics
        .iter()
        .map(|metric| {
            let column = MetricColumn {
                dataset: dataset.clone(),
                metric: metric.clone(),
            };
            RowView {
                label: inputs.specs.metric_label(metric),
                cells: inputs
                    .models
                    .iter()
                    .map(|m| study_cell(inputs, notes, &column, &m.params.model, 1.0))
                    .collect(),
            }
        })
        .collect();
    (inputs.specs.dataset_label(&dataset), columns, rows)
}

fn column_label(specs: &TableSpecs, column: &MetricColumn) -> String {
    format!(
        "{} {}",
        specs.dataset_label(&column.dataset),
        specs.metric_label(&column.metric)
    )
}

fn comparison(spec: &TableSpec, inputs: &Inputs<'_>, notes: &mut Notes) -> Body {
    let shown_columns = inputs.scored_columns(spec);
    let columns = shown_columns
        .iter()
        .map(|c| column_label(inputs.specs, c))
        .collect();
    let mut methods: Vec<&str> = Vec::new();
    for value in &inputs.reported.values {
        if let Some(method) = value.method.as_deref() {
            let shown = shown_columns
                .iter()
                .any(|c| c.dataset == value.dataset && c.metric == value.metric);
            if shown && !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    let mut rows: Vec<RowView> = methods
        .iter()
        .map(|method| RowView {
            label: (*method).to_string(),
            cells: shown_columns
                .iter()
                .map(
                    |c| match inputs.reported.find(&c.dataset, &c.metric, method, 1.0) {
                        // Published, not computed here: `reproduced` stays empty.
                        Some(r) => CellView {
                            title: r.source.clone(),
                            reported: fmt(r.value),
                            reproduced: "—".to_string(),
                            ..CellView::text(fmt(r.value))
                        },
                        None => CellView::text("—"),
                    },
                )
                .collect(),
        })
        .collect();
    rows.extend(inputs.models.iter().map(|m| {
        RowView {
            // At smoke scale the row says so itself, wherever it is pasted.
            label: if inputs.verdicts {
                format!("{} (this study)", m.label())
            } else {
                format!("{} (this study, smoke scale: not comparable)", m.label())
            },
            cells: shown_columns
                .iter()
                .map(|c| study_cell(inputs, notes, c, &m.params.model, 1.0))
                .collect(),
        }
    }));
    ("method".to_string(), columns, rows)
}

/// The training-set fractions of the observations, ascending.
pub fn fractions(observations: &[Observation]) -> Vec<f64> {
    let mut fractions: Vec<f64> = observations.iter().map(|o| o.fraction).collect();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    fractions
}

fn efficiency(spec: &TableSpec, inputs: &Inputs<'_>, notes: &mut Notes) -> Body {
    let fractions = fractions(inputs.observations);
    let columns = fractions.iter().map(|f| format!("{f}")).collect();
    let mut rows = Vec::new();
    for column in inputs.scored_columns(spec) {
        for model in inputs.models {
            rows.push(RowView {
                label: format!("{} · {}", column_label(inputs.specs, column), model.label()),
                cells: fractions
                    .iter()
                    .map(|&f| study_cell(inputs, notes, column, &model.params.model, f))
                    .collect(),
            });
        }
    }
    ("score · model / fraction".to_string(), columns, rows)
}

/// One row per claim: its verdict, the adjacent pairs of sizes it rests on, its source.
fn claims(inputs: &Inputs<'_>) -> Body {
    let columns = ["verdict", "adjacent sizes (smaller → larger)", "source"]
        .map(String::from)
        .to_vec();
    let rows = inputs
        .scored_claims()
        .map(|claim| {
            let checked = claim_checks::check(claim, inputs.models, inputs.observations);
            let pairs = if checked.pairs.is_empty() {
                "—".to_string()
            } else {
                checked.pairs.join("; ")
            };
            RowView {
                label: claim.text.clone(),
                cells: vec![
                    CellView::text(checked.verdict),
                    CellView::text(pairs),
                    CellView::text(claim.source.clone()),
                ],
            }
        })
        .collect();
    ("claim".to_string(), columns, rows)
}
