//! Every value a worker stage runs with and where it comes from, for
//! `rsfm config show --resolved`. The values are the plan's own translation (the `params` of
//! `stage.json`, see [`worker_params::translate`]); each key is traced to the recipe line or
//! `--set` that wrote it, the model preset line that filled it, an inference from the stages
//! it needs, or the schema's default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::worker_params::{self, Needed, WorkerParams};
use crate::error::BadInput;
use crate::presets::find_preset;
use crate::recipe::{self, is_cli_origin, Location, Recipe, Stage, StageKind};

/// Where a resolved value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueOrigin {
    /// Written in a recipe file (or a recipe it extends).
    Recipe(Location),
    /// Set on the command line with `--set`.
    Cli(Location),
    /// The model preset: its `[vit]` table or its `[defaults]`.
    Preset(Location),
    /// Worked out from the stages it needs or its dataset's table (`dataset`, `format`,
    /// `pretrained`, `model_from`, `task`).
    Inferred,
    /// A rule of the stage's kind, for a key the stage leaves out.
    Rule(&'static str),
    /// The schema's default for a key that nothing sets.
    Default,
}

impl fmt::Display for ValueOrigin {
    /// `recipe FILE:LINE:COL`, `cli (--set KEY=VALUE)`, `preset FILE:LINE:COL`, `inferred` or
    /// `default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueOrigin::Recipe(at) => write!(f, "recipe {at}"),
            ValueOrigin::Cli(at) => write!(f, "{at}"),
            ValueOrigin::Preset(at) => write!(f, "preset {at}"),
            ValueOrigin::Inferred => f.write_str("inferred"),
            ValueOrigin::Rule(rule) => f.write_str(rule),
            ValueOrigin::Default => f.write_str("default"),
        }
    }
}

impl Serialize for ValueOrigin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One value a stage runs with.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedValue {
    /// The key as recipes spell it; `model.KEY` for a key of the inlined preset architecture.
    pub key: String,
    /// The value (`null`: unset, the worker uses the preset's or none).
    pub value: Value,
    /// Where it comes from.
    pub origin: ValueOrigin,
}

/// A worker stage and every value it runs with.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedStage {
    /// Its name (`base@values` in a matrix).
    pub stage: String,
    /// Its kind.
    pub kind: StageKind,
    /// Every key of the kind's schema (and of the inlined preset), in schema order.
    pub values: Vec<ResolvedValue>,
}

/// The worker stages of `recipe` with their values and origins; `command` stages are left
/// out (they run their `argv`, which `rsfm config show` prints).
pub fn resolve(recipe: &Recipe) -> anyhow::Result<Vec<ResolvedStage>> {
    let mut stages = Vec::new();
    for stage in &recipe.stages {
        let needed: Vec<Needed> = stage
            .needs
            .iter()
            .filter_map(|name| recipe.stages.iter().find(|s| s.name == *name))
            .map(|s| Needed {
                base: &s.base,
                kind: s.kind,
            })
            .collect();
        let translated =
            worker_params::translate(recipe, stage, &needed).map_err(BadInput::wrap)?;
        if let Some(translated) = translated {
            stages.push(ResolvedStage {
                stage: stage.name.clone(),
                kind: stage.kind,
                values: trace(&recipe.dir, stage, &translated)?,
            });
        }
    }
    Ok(stages)
}

/// Each key of the stage's schema with its translated value and origin; `dir` is the recipe's
/// folder, where the stage's model preset is looked up.
pub fn trace(
    dir: &Path,
    stage: &Stage,
    translated: &WorkerParams,
) -> anyhow::Result<Vec<ResolvedValue>> {
    let preset = preset_locations(dir, stage)?;
    let fields = stage.kind.params();
    let mut keys: Vec<&str> = fields.iter().map(|f| f.name).collect();
    for key in translated.params.keys() {
        if !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    let mut values = Vec::new();
    for key in keys {
        let value = translated.params.get(key).cloned().unwrap_or(Value::Null);
        let default = fields
            .iter()
            .find(|f| f.name == key)
            .and_then(|f| f.default.as_ref());
        let origin = if let Some(at) = stage.key_locations.get(key) {
            written_at(at)
        } else if let Some((_, preset_key)) = translated.from_preset.iter().find(|(k, _)| k == key)
        {
            preset_origin(&preset, &format!("defaults.{preset_key}"))
        } else if let Some((_, rule)) = translated.by_rule.iter().find(|(k, _)| k == key) {
            ValueOrigin::Rule(rule)
        } else if value.is_null() || Some(&value) == default {
            ValueOrigin::Default
        } else {
            ValueOrigin::Inferred
        };
        let Value::Object(architecture) = &value else {
            values.push(ResolvedValue {
                key: key.to_string(),
                value,
                origin,
            });
            continue;
        };
        // The preset's `[vit]` table, inlined: the name as written, then each of its keys.
        values.push(ResolvedValue {
            key: key.to_string(),
            value: stage.params.get(key).cloned().unwrap_or(Value::Null),
            origin,
        });
        for (sub, sub_value) in architecture {
            values.push(ResolvedValue {
                key: format!("{key}.{sub}"),
                value: sub_value.clone(),
                origin: preset_origin(&preset, &format!("vit.{sub}")),
            });
        }
    }
    Ok(values)
}

/// The origin of a key written in the stage's table: the recipe or `--set`.
fn written_at(at: &Location) -> ValueOrigin {
    if is_cli_origin(at) {
        ValueOrigin::Cli(at.clone())
    } else {
        ValueOrigin::Recipe(at.clone())
    }
}

/// The preset line of `key` (`vit.KEY` or `defaults.KEY`); a key the preset leaves out
/// takes the architecture's default.
fn preset_origin(preset: &BTreeMap<String, Location>, key: &str) -> ValueOrigin {
    preset
        .get(key)
        .map_or(ValueOrigin::Default, |at| ValueOrigin::Preset(at.clone()))
}

/// Where each key of the stage's model preset is written (empty for a stage without one).
fn preset_locations(dir: &Path, stage: &Stage) -> anyhow::Result<BTreeMap<String, Location>> {
    let Some(Value::String(name)) = stage.params.get("model") else {
        return Ok(BTreeMap::new());
    };
    let found = find_preset(name, dir)?;
    let origins = recipe::toml_origins(Path::new(&found.origin), &found.text)?;
    Ok(origins.into_iter().map(|o| (o.key, o.location)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::worker_params::tests::SMALL;

    fn origin_of<'a>(stage: &'a ResolvedStage, key: &str) -> &'a ValueOrigin {
        &stage
            .values
            .iter()
            .find(|v| v.key == key)
            .unwrap_or_else(|| panic!("no {key} in {stage:?}"))
            .origin
    }

    #[test]
    fn inputs_worked_out_from_the_needed_stages_are_inferred() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("study.toml");
        std::fs::write(&file, SMALL).unwrap();
        let recipe = recipe::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let stages = resolve(&recipe).unwrap();
        let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(
            names,
            ["pretrain", "seg", "score"],
            "command stages left out"
        );
        assert_eq!(origin_of(&stages[1], "pretrained"), &ValueOrigin::Inferred);
        assert_eq!(origin_of(&stages[2], "model_from"), &ValueOrigin::Inferred);
        assert_eq!(origin_of(&stages[2], "task"), &ValueOrigin::Inferred);
        // The second `steps` line is the seg stage's.
        let (seg_steps, _) = SMALL
            .lines()
            .enumerate()
            .filter(|(_, line)| line.starts_with("steps"))
            .nth(1)
            .unwrap();
        let steps_line = seg_steps + 1;
        assert!(matches!(
            origin_of(&stages[1], "steps"),
            ValueOrigin::Recipe(at) if at.line == steps_line
        ));
        // No preset file near the recipe: the built-in one, with its lines.
        let head = origin_of(&stages[1], "head_channels").to_string();
        assert_eq!(head, "preset built-in vit-tiny:21:1");
    }
}
