//! The model presets a plan uses, with the parameter counts `rsfm params` computes.

use crate::param_count::{report_for, ParamsReport};
use crate::plan::Plan;
use crate::presets::find_preset;

/// A model preset of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Computed vs reported parameters and topology, as `rsfm params` shows them.
    pub params: ParamsReport,
    /// Fields of its `[vit]` table that are assumed or reconstructed: `name.field: source`.
    pub assumptions: Vec<String>,
}

impl ModelInfo {
    /// Column label: `vit-b (85.80M)`.
    pub fn label(&self) -> String {
        format!(
            "{} ({})",
            self.params.model,
            super::tables::human(self.params.computed as f64)
        )
    }
}

/// The presets named by `model` in the plan's stages, smallest first. A preset that cannot be
/// read is an error naming it.
pub fn models(plan: &Plan) -> anyhow::Result<Vec<ModelInfo>> {
    let mut seen: Vec<String> = Vec::new();
    let mut models = Vec::new();
    for planned in &plan.stages {
        let Some(name) = planned.stage.params.get("model").and_then(|m| m.as_str()) else {
            continue;
        };
        if seen.iter().any(|s| s == name) {
            continue;
        }
        seen.push(name.to_string());
        let found = find_preset(name, &planned.recipe_dir)?;
        models.push(ModelInfo {
            params: report_for(&found)?,
            assumptions: super::lineage::preset_assumptions(name, &planned.recipe_dir),
        });
    }
    models.sort_by_key(|m| m.params.computed);
    Ok(models)
}
