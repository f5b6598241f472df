//! `rsfm plan RECIPE --sensitivity STAGE`: the values tagged `assumed` or `reconstructed` that
//! feed one evaluation (its cell of the report), each with alternatives (half and double a
//! number, the other truth value) that its stage's schema accepts, what rerunning with each
//! costs (the stage and everything downstream of it in the cell's matrix combination, at
//! `--estimate`'s figures), and one recipe per alternative, written to run the sweep: it extends
//! the recipe, narrows its matrix to the cell's combination and sets the one value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rsfm_model::params::{
    EvaluateParams, FinetuneDetParams, FinetuneSegParams, MaePretrainParams, Schema,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Plan, PlannedStage};
use crate::error::BadInput;
use crate::recipe::StageKind;

/// One assumed value upstream of the cell, with its alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assumed {
    /// `experiment/stage` holding it.
    pub stage: String,
    /// The stage's base name (its `[stage.NAME]`).
    pub base: String,
    /// The parameter.
    pub param: String,
    /// Its value now.
    pub value: Value,
    /// Its source tag.
    pub source: String,
    /// Values to try instead (empty: none known; set one by hand).
    pub alternatives: Vec<Value>,
    /// GPU-hours of one alternative: the stage and its dependents in the cell's combination.
    pub gpu_hours: f64,
    /// Stages one alternative reruns.
    pub reruns: usize,
}

/// The sensitivity plan of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensitivity {
    /// The evaluation (`experiment/stage`).
    pub cell: String,
    /// Its assumed values, upstream first.
    pub assumed: Vec<Assumed>,
    /// The recipes written, one per alternative within the budget.
    pub recipes: Vec<PathBuf>,
    /// Sum of their GPU-hours.
    pub gpu_hours: f64,
}

/// The assumed values upstream of the evaluation `cell` of `plan`, with their alternatives and
/// costs (`gpu_hours`: GPU-hours of each training stage by `experiment/stage`).
pub fn assumed_upstream(
    plan: &Plan,
    cell: &str,
    gpu_hours: &HashMap<String, f64>,
) -> anyhow::Result<(usize, Vec<Assumed>)> {
    let index = plan
        .stages
        .iter()
        .position(|s| s.stage.name == cell || s.display_name() == cell)
        .filter(|&i| plan.stages[i].stage.kind == StageKind::Evaluate)
        .ok_or_else(|| {
            let evaluations: Vec<String> = plan
                .stages
                .iter()
                .filter(|s| s.stage.kind == StageKind::Evaluate)
                .map(|s| s.stage.name.clone())
                .take(8)
                .collect();
            BadInput::msg(format!(
                "--sensitivity {cell}: no evaluate stage of that name in the plan (e.g. {})",
                evaluations.join(", ")
            ))
        })?;
    let combination = &plan.stages[index].stage.matrix;
    let mut upstream = vec![false; plan.stages.len()];
    mark_upstream(plan, index, &mut upstream);
    let mut assumed = Vec::new();
    for (i, planned) in plan.stages.iter().enumerate().filter(|(i, _)| upstream[*i]) {
        let reruns: Vec<usize> = std::iter::once(i)
            .chain(plan.dependents(i))
            .filter(|&j| in_combination(&plan.stages[j], combination))
            .collect();
        let cost: f64 = reruns
            .iter()
            .filter_map(|&j| gpu_hours.get(&plan.stages[j].display_name()))
            .sum();
        let kind = planned.stage.kind.as_str();
        for (param, source) in assumed_params(planned) {
            // A value left out of the key changes no result: a sweep of it would be cached.
            if rsfm_model::params::left_out_of_key(kind, &param) {
                continue;
            }
            let value = planned
                .worker_params
                .as_ref()
                .and_then(|w| w.params.get(&param))
                .or_else(|| planned.stage.params.get(&param));
            let Some(value) = value else {
                continue;
            };
            assumed.push(Assumed {
                stage: planned.display_name(),
                base: planned.stage.base.clone(),
                alternatives: alternatives(planned, &param, value),
                param,
                value: value.clone(),
                source,
                gpu_hours: cost,
                reruns: reruns.len(),
            });
        }
    }
    Ok((index, assumed))
}

/// The parameters of `planned` whose value is tagged assumed or reconstructed, with the tag:
/// its own (recipe) values and those it takes from its model preset's `[defaults]`.
fn assumed_params(planned: &PlannedStage) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = planned
        .stage
        .sources
        .iter()
        .filter(|(_, source)| crate::report::is_assumption(source))
        .map(|(param, source)| (param.clone(), source.clone()))
        .collect();
    let Some(worker) = &planned.worker_params else {
        return found;
    };
    let defaults = planned
        .stage
        .params
        .get("model")
        .and_then(Value::as_str)
        .and_then(|model| crate::presets::preset_section(model, &planned.recipe_dir, "defaults"));
    if let Some(defaults) = defaults {
        for (param, key) in &worker.from_preset {
            let source = defaults
                .get(key)
                .and_then(|entry| entry.get("source"))
                .and_then(toml::Value::as_str);
            if let Some(source) = source.filter(|s| crate::report::is_assumption(s)) {
                found.push((param.clone(), format!("{source} (preset [defaults].{key})")));
            }
        }
    }
    found
}

fn mark_upstream(plan: &Plan, index: usize, marked: &mut [bool]) {
    if std::mem::replace(&mut marked[index], true) {
        return;
    }
    for &need in &plan.stages[index].needs {
        mark_upstream(plan, need, marked);
    }
}

/// Whether `stage` belongs to the matrix combination `combination` (agrees on every axis both
/// have).
fn in_combination(stage: &PlannedStage, combination: &indexmap::IndexMap<String, String>) -> bool {
    stage
        .stage
        .matrix
        .iter()
        .all(|(axis, value)| combination.get(axis).is_none_or(|v| v == value))
}

/// Half and double a number (integers rounded, at least 1; a value in (0, 1] stays there) and
/// the other truth value, each kept only when the stage's schema accepts it.
fn alternatives(planned: &PlannedStage, param: &str, value: &Value) -> Vec<Value> {
    let candidates: Vec<Value> = match value {
        Value::Bool(flag) => vec![Value::Bool(!flag)],
        Value::Number(n) if n.is_i64() => {
            let v = n.as_i64().unwrap_or_default();
            [v / 2, v * 2]
                .into_iter()
                .map(|x| x.max(1))
                .filter(|&x| x != v)
                .map(Value::from)
                .collect()
        }
        Value::Number(n) => {
            let v = n.as_f64().unwrap_or_default();
            // A value in (0, 1] (a rate, a ratio) stays in (0, 1].
            let unit = v > 0.0 && v <= 1.0;
            [v / 2.0, v * 2.0]
                .into_iter()
                .filter(|&x| !unit || x <= 1.0)
                .filter_map(|x| serde_json::Number::from_f64(x).map(Value::Number))
                .collect()
        }
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .filter(|candidate| accepted(planned, param, candidate))
        .collect()
}

/// Whether the stage's kind accepts `param = candidate` in its resolved parameters.
fn accepted(planned: &PlannedStage, param: &str, candidate: &Value) -> bool {
    let Some(worker) = &planned.worker_params else {
        return false;
    };
    let mut map: Map<String, Value> = worker.params.clone();
    if !map.contains_key(param) {
        return false;
    }
    map.insert(param.to_string(), candidate.clone());
    match planned.stage.kind {
        StageKind::MaePretrain => {
            MaePretrainParams::from_map(map).is_ok_and(|p| p.validate().is_ok())
        }
        StageKind::FinetuneDet => {
            FinetuneDetParams::from_map(map).is_ok_and(|p| p.validate().is_ok())
        }
        StageKind::FinetuneSeg => {
            FinetuneSegParams::from_map(map).is_ok_and(|p| p.validate().is_ok())
        }
        StageKind::Evaluate => EvaluateParams::from_map(map).is_ok_and(|p| p.validate().is_ok()),
        _ => false,
    }
}

/// Writes one recipe per alternative into `dir`, cheapest first while the total stays within
/// `budget` GPU-hours (all without a budget): each extends `recipe` (absolute), names its own
/// experiment, narrows the matrix to the cell's combination and sets the one value.
pub fn write_recipes(
    dir: &Path,
    recipe: &Path,
    cell: &PlannedStage,
    assumed: &[Assumed],
    budget: Option<f64>,
) -> anyhow::Result<(Vec<PathBuf>, f64)> {
    let mut runs: Vec<(&Assumed, usize, &Value)> = assumed
        .iter()
        .flat_map(|a| {
            a.alternatives
                .iter()
                .enumerate()
                .map(move |(i, v)| (a, i, v))
        })
        .collect();
    runs.sort_by(|a, b| a.0.gpu_hours.total_cmp(&b.0.gpu_hours));
    fs_err::create_dir_all(dir)?;
    let (mut written, mut total) = (Vec::new(), 0.0);
    for (assumed, i, value) in runs {
        if budget.is_some_and(|b| total + assumed.gpu_hours > b) {
            continue;
        }
        let name = format!(
            "{}-sens-{}-{}-{}",
            cell.experiment,
            assumed.base,
            assumed.param,
            i + 1
        );
        let path = dir.join(format!("{name}.toml"));
        fs_err::write(&path, recipe_text(recipe, cell, assumed, value, &name)?)?;
        total += assumed.gpu_hours;
        written.push(path);
    }
    Ok((written, total))
}

/// A matrix value (kept as text in the plan) written back with its type: numbers and truth
/// values as they were written (their text is canonical JSON), anything else as a string.
fn typed_matrix_value(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Number(_) | Value::Bool(_))) => value.to_string(),
        _ => toml::Value::String(text.to_string()).to_string(),
    }
}

/// The text of one sweep recipe.
fn recipe_text(
    recipe: &Path,
    cell: &PlannedStage,
    assumed: &Assumed,
    value: &Value,
    name: &str,
) -> anyhow::Result<String> {
    let toml_value =
        |v: &Value| -> anyhow::Result<String> { Ok(toml::Value::try_from(v)?.to_string()) };
    let mut text = format!(
        "# Sensitivity of {} to {}.{}: {} instead of {} ({}).\n# Written by `rsfm plan --sensitivity`; run it with `rsfm run` on this file.\nextends = [{}]\n\n[experiment]\nname = {}\n",
        cell.display_name(),
        assumed.base,
        assumed.param,
        toml_value(value)?,
        toml_value(&assumed.value)?,
        assumed.source,
        toml::Value::String(recipe.display().to_string()),
        toml::Value::String(name.to_string()),
    );
    if !cell.stage.matrix.is_empty() {
        text.push_str("\n# Only the cell's combination.\n[matrix]\n");
        for (axis, value) in &cell.stage.matrix {
            text.push_str(&format!("{axis} = [{}]\n", typed_matrix_value(value)));
        }
    }
    let source = format!(
        "assumed: sensitivity alternative to {} ({})",
        toml_value(&assumed.value)?,
        assumed.source
    );
    text.push_str(&format!(
        "\n[stage.{}]\n{} = {{ value = {}, source = {} }}\n",
        assumed.base,
        assumed.param,
        toml_value(value)?,
        toml::Value::String(source)
    ));
    Ok(text)
}
