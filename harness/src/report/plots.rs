//! The report's plots: per dataset, score vs parameter count (log axis), reproduced beside
//! reported; per efficiency column, score vs training-set fraction, one line per size. Only
//! datasets some evaluation of the plan scores get a plot.

use super::cells::{percent, Stat};
use super::spec::{MetricColumn, TableKind};
use super::svg::{Plot, Series};
use super::tables::{fractions, Inputs};

/// Mean over seeds of the study's value at one (column, model, fraction), if any ran, on the
/// split scored here.
fn mean(inputs: &Inputs<'_>, column: &MetricColumn, model: &str, fraction: f64) -> Option<f64> {
    let values: Vec<f64> = inputs
        .observations
        .iter()
        .filter(|o| {
            o.dataset == column.dataset
                && o.model == model
                && (o.fraction - fraction).abs() < 1e-9
                && o.scored_here()
        })
        .filter_map(|o| percent(o.metrics.as_ref()?, &column.metric))
        .collect();
    Stat::of(&values).map(|s| s.mean)
}

/// Every plot of the report, in table order, of the datasets some evaluation of the plan
/// scores (a plot no stage can fill is left out, as its table is).
pub fn plots(inputs: &Inputs<'_>) -> Vec<Plot> {
    let mut plots = Vec::new();
    for spec in &inputs.specs.tables {
        match spec.kind {
            TableKind::Dataset => {
                let (Some(dataset), Some(metric)) = (&spec.dataset, spec.metrics.first()) else {
                    continue;
                };
                if !inputs.scores(dataset) {
                    continue;
                }
                plots.push(scaling(
                    inputs,
                    &MetricColumn {
                        dataset: dataset.clone(),
                        metric: metric.clone(),
                    },
                ));
            }
            TableKind::Efficiency => {
                plots.extend(
                    spec.columns
                        .iter()
                        .filter(|c| inputs.scores(&c.dataset))
                        .map(|c| efficiency(inputs, c)),
                );
            }
            TableKind::Sizes | TableKind::Comparison | TableKind::Claims => {}
        }
    }
    plots
}

fn labels(inputs: &Inputs<'_>, column: &MetricColumn) -> (String, String) {
    (
        inputs.specs.dataset_label(&column.dataset),
        inputs.specs.metric_label(&column.metric),
    )
}

fn scaling(inputs: &Inputs<'_>, column: &MetricColumn) -> Plot {
    let (dataset, metric) = labels(inputs, column);
    let reproduced = inputs
        .models
        .iter()
        .filter_map(|m| {
            Some((
                m.params.computed as f64,
                mean(inputs, column, &m.params.model, 1.0)?,
            ))
        })
        .collect();
    let reported = inputs
        .models
        .iter()
        .filter_map(|m| {
            let value =
                inputs
                    .reported
                    .find(&column.dataset, &column.metric, &m.params.model, 1.0)?;
            Some((
                m.params.reported.unwrap_or(m.params.computed as f64),
                value.value,
            ))
        })
        .collect();
    Plot {
        id: format!("plot-scaling-{}-{}", column.dataset, column.metric),
        title: format!("{dataset}: {metric} vs parameters"),
        x_label: "backbone parameters (log)".into(),
        y_label: metric,
        log_x: true,
        series: vec![
            Series {
                label: "reproduced".into(),
                points: reproduced,
                hollow: false,
                line: true,
            },
            Series {
                label: "paper (reported)".into(),
                points: reported,
                hollow: true,
                line: false,
            },
        ],
    }
}

fn efficiency(inputs: &Inputs<'_>, column: &MetricColumn) -> Plot {
    let (dataset, metric) = labels(inputs, column);
    let fractions = fractions(inputs.observations);
    let mut series: Vec<Series> = inputs
        .models
        .iter()
        .map(|m| Series {
            label: m.params.model.clone(),
            points: fractions
                .iter()
                .filter_map(|&f| Some((f, mean(inputs, column, &m.params.model, f)?)))
                .collect(),
            hollow: false,
            line: true,
        })
        .collect();
    // Reported points of the study's own sizes only, one labelled series per size: a value of
    // a model the study does not train would float unlabelled over its curves.
    for model in inputs.models {
        let points: Vec<(f64, f64)> = inputs
            .reported
            .values
            .iter()
            .filter(|v| v.dataset == column.dataset && v.metric == column.metric)
            .filter(|v| v.model.as_deref() == Some(model.params.model.as_str()))
            .map(|v| (v.fraction, v.value))
            .collect();
        if !points.is_empty() {
            series.push(Series {
                label: format!("{} (paper)", model.params.model),
                points,
                hollow: true,
                line: false,
            });
        }
    }
    Plot {
        id: format!("plot-efficiency-{}-{}", column.dataset, column.metric),
        title: format!("{dataset}: {metric} vs training fraction"),
        x_label: "fraction of the training set".into(),
        y_label: metric,
        log_x: false,
        series,
    }
}
