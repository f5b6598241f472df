//! Which result each evaluation of the plan stands for: its dataset, model, fraction and seed,
//! traced through the stages it needs, and the settings of that chain that rest on assumptions.
//! Only the plan's current keys are read, so a superseded run never fills a cell.

use std::collections::BTreeMap;

use rsfm_model::params::{EvaluateParams, FinetuneDetParams, FinetuneSegParams};

use crate::plan::key::KeyField;
use crate::plan::stage_params::parsed;
use crate::plan::{Plan, PlannedStage};
use crate::presets::preset_section;
use crate::recipe::StageKind;

/// One `evaluate` stage of the plan and what it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Dataset format scored: `dota`, `dior-r`, `potsdam`, `loveda`.
    pub dataset: String,
    /// Model preset fine-tuned.
    pub model: String,
    /// Training-set fraction of the fine-tuning.
    pub fraction: f64,
    /// Seed of the evaluation.
    pub seed: u64,
    /// The split it scored (`crate::plan::scoring::Scoring::split`).
    pub split: &'static str,
    /// The settings it scored under (`crate::plan::scoring::Scoring::protocol`).
    pub protocol: String,
    /// `experiment/stage` of the evaluation.
    pub stage: String,
    /// `experiment/stage` of the fine-tuning it scores (what one more seed retrains).
    pub finetune: String,
    /// Its current content key.
    pub key: String,
    /// Its experiment.
    pub experiment: String,
    /// Settings along its chain that are assumed or reconstructed: `stage.param: source`.
    pub assumptions: Vec<String>,
    /// The worker identity in its key, short: its build's source hash and profile.
    pub code: String,
    /// Its matrix values other than the seed: runs of one cell must agree on them (and on
    /// `code`) to be averaged as seeds.
    pub settings: Vec<(String, String)>,
    /// Final metrics, once read from the store (`None`: not run yet).
    pub metrics: Option<BTreeMap<String, f64>>,
}

impl Observation {
    /// Whether this study scored it (every size and fraction is scored here), rather than an
    /// evaluation server (only the runs submitted): curves and claim checks compare sizes and
    /// fractions on the split scored here, so that no line mixes two splits.
    pub fn scored_here(&self) -> bool {
        self.split != crate::plan::scoring::TEST_SERVER
    }
}

/// A `rescore-*` stage of the plan: an evaluation scored again under other settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescore {
    /// The key of the evaluation it rescores.
    pub evaluation: String,
    /// What it changed, as `name=value` pairs (`labels=eroded`, `ap_metric=voc12 iou=0.3`).
    pub settings: String,
    /// `experiment/stage` of the rescore.
    pub stage: String,
    /// Its current key.
    pub key: String,
    /// Final metrics, once read from the store.
    pub metrics: Option<BTreeMap<String, f64>>,
}

/// Settings of a `rescore-*` stage that change its scores.
const RESCORE_SETTINGS: [&str; 6] = [
    "labels",
    "protocol",
    "ap_metric",
    "iou",
    "version",
    "val_tiles",
];

/// The `rescore-*` stages of `plan` whose `predictions` is a needed evaluation.
pub fn rescores(plan: &Plan) -> Vec<Rescore> {
    plan.stages
        .iter()
        .filter(|s| s.stage.kind == StageKind::Prepare)
        .filter_map(|s| {
            let params = &s.stage.params;
            let op = params.get("op")?.as_str()?;
            if !op.starts_with("rescore-") {
                return None;
            }
            let predictions = params.get("predictions")?.as_str()?;
            let evaluation = s
                .needs
                .iter()
                .map(|&i| &plan.stages[i])
                .find(|n| n.stage.base == predictions && n.stage.kind == StageKind::Evaluate)?;
            let settings: Vec<String> = RESCORE_SETTINGS
                .iter()
                .filter_map(|name| {
                    // A truth value only when set (clutter = true).
                    let value = params
                        .get(*name)
                        .filter(|v| **v != serde_json::Value::Bool(false))?;
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string);
                    Some(format!("{name}={text}"))
                })
                .collect();
            Some(Rescore {
                evaluation: evaluation.key.key.clone(),
                settings: settings.join(" "),
                stage: s.display_name(),
                key: s.key.key.clone(),
                metrics: None,
            })
        })
        .collect()
}

/// The evaluations of `plan`, in plan order. Evaluations whose chain cannot be traced (a
/// fine-tuning stage without a `model`) are skipped.
pub fn observations(plan: &Plan) -> Vec<Observation> {
    plan.stages
        .iter()
        .filter(|s| s.stage.kind == StageKind::Evaluate)
        .filter_map(|s| observation(plan, s))
        .collect()
}

fn observation(plan: &Plan, eval: &PlannedStage) -> Option<Observation> {
    let params: EvaluateParams = parsed(eval)?;
    let scoring = crate::plan::scoring::scoring_of(&params);
    let dataset = params.format?;
    let model_from = params.model_from?;
    let finetune = eval
        .needs
        .iter()
        .map(|&i| &plan.stages[i])
        .find(|s| s.stage.base == model_from)?;
    let model = finetune.stage.params.get("model")?.as_str()?.to_string();
    let fraction = match finetune.stage.kind {
        StageKind::FinetuneDet => parsed(finetune).map(|p: FinetuneDetParams| p.fraction),
        StageKind::FinetuneSeg => parsed(finetune).map(|p: FinetuneSegParams| p.fraction),
        _ => None,
    }
    .unwrap_or(1.0);
    let code = code_label(&eval.key.fields);
    let settings = eval
        .stage
        .matrix
        .iter()
        .filter(|(axis, _)| axis.as_str() != "seed")
        .map(|(axis, value)| (axis.clone(), value.clone()))
        .collect();
    let mut assumptions = Vec::new();
    collect_assumptions(plan, eval, &mut assumptions);
    assumptions.extend(preset_assumptions(&model, &eval.recipe_dir));
    assumptions.sort();
    assumptions.dedup();
    Some(Observation {
        split: scoring
            .as_ref()
            .map_or_else(|| crate::plan::scoring::scored_split(&dataset), |s| s.split),
        protocol: scoring.map(|s| s.protocol).unwrap_or_default(),
        dataset,
        model,
        fraction,
        seed: eval.stage.seed,
        stage: eval.display_name(),
        finetune: finetune.display_name(),
        key: eval.key.key.clone(),
        experiment: eval.experiment.clone(),
        assumptions,
        code,
        settings,
        metrics: None,
    })
}

/// The worker identity in a key's manifest as a short label: its build's source hash and
/// profile (or, for a worker without a build identity, its executable's sha256) and the
/// libtorch version; empty for a key without a worker.
fn code_label(fields: &BTreeMap<String, KeyField>) -> String {
    let text = |name: &str| fields.get(name).and_then(|f| f.value.as_str());
    let short = |hash: &str| hash[..hash.len().min(12)].to_string();
    let worker = match (text("worker.build.sources"), text("worker.executable")) {
        (Some(sources), _) => format!(
            "rsfm-worker sources {} ({})",
            short(sources),
            text("worker.build.profile").unwrap_or("?")
        ),
        (None, Some(sha)) => format!("rsfm-worker sha256 {}", short(sha)),
        (None, None) => return String::new(),
    };
    match text("worker.libtorch.version") {
        Some(version) => format!("{worker}, libtorch {version}"),
        None => worker,
    }
}

/// Whether a provenance source marks a value the report must flag.
pub fn is_assumption(source: &str) -> bool {
    source.starts_with("assumed") || source.starts_with("reconstructed")
}

/// The assumed or reconstructed settings of `stage` and every stage it needs.
fn collect_assumptions(plan: &Plan, stage: &PlannedStage, out: &mut Vec<String>) {
    for (param, source) in &stage.stage.sources {
        if is_assumption(source) {
            out.push(format!("{}.{param}: {source}", stage.stage.base));
        }
    }
    for &i in &stage.needs {
        collect_assumptions(plan, &plan.stages[i], out);
    }
}

/// The assumed or reconstructed fields of the `[vit]` table of preset `model` (none when it
/// cannot be read: the plan has already resolved it).
pub fn preset_assumptions(model: &str, recipe_dir: &std::path::Path) -> Vec<String> {
    let Some(vit) = preset_section(model, recipe_dir, "vit") else {
        return Vec::new();
    };
    vit.iter()
        .filter_map(|(field, value)| {
            let source = value.get("source")?.as_str()?;
            is_assumption(source).then(|| format!("{model}.{field}: {source}"))
        })
        .collect()
}
