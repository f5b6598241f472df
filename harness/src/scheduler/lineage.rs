//! The study coordinates a stage's rows carry (model, task, dataset, fraction): its own, else
//! those of the stages it needs, so an evaluation names what it scored.

use crate::plan::{Plan, PlannedStage};
use crate::recipe::StageKind;

/// Model, task, dataset and data fraction of a stage, own or inherited through `needs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    /// Model preset name.
    pub model: Option<String>,
    /// Task (`detection`, `segmentation`, `pretraining`, or the stage's `task`).
    pub task: Option<String>,
    /// Dataset name.
    pub dataset: Option<String>,
    /// Training data fraction.
    pub fraction: Option<f64>,
}

impl Lineage {
    /// The coordinates of stage `index` of `plan`: each one the stage does not set comes from
    /// the first stage in its `needs` (searched depth-first, in the order written) that has it.
    /// A `dataset` naming a needed `prepare` stage that cuts a dataset (tile-dota, crop-*) is
    /// that dataset, so the stages reading Potsdam's crops count as Potsdam stages; one that
    /// synthesises a dataset (`synth-dior-r`) is the dataset it imitates (`dior-r`).
    pub fn of(plan: &Plan, index: usize) -> Lineage {
        let planned = &plan.stages[index];
        let mut lineage = Lineage::own(planned);
        if let Some(source) = cut_from(plan, planned, lineage.dataset.as_deref()) {
            lineage.dataset = Some(source);
        }
        for &need in &planned.needs {
            if lineage.is_complete() {
                break;
            }
            lineage.fill_from(Lineage::of(plan, need));
        }
        lineage
    }

    /// The coordinates the stage itself sets.
    fn own(planned: &PlannedStage) -> Lineage {
        let stage = &planned.stage;
        Lineage {
            model: coordinate(planned, "model").map(|m| preset_name(&m)),
            task: coordinate(planned, "task").or_else(|| {
                match stage.kind.as_str() {
                    "finetune-det" => Some("detection"),
                    "finetune-seg" => Some("segmentation"),
                    "mae-pretrain" => Some("pretraining"),
                    _ => None,
                }
                .map(str::to_string)
            }),
            dataset: coordinate(planned, "dataset")
                .or_else(|| planned.datasets.first().map(|(n, _)| n.clone()))
                .or_else(|| synthesised(planned)),
            fraction: coordinate(planned, "fraction").and_then(|f| f.parse().ok()),
        }
    }

    fn is_complete(&self) -> bool {
        self.model.is_some()
            && self.task.is_some()
            && self.dataset.is_some()
            && self.fraction.is_some()
    }

    fn fill_from(&mut self, other: Lineage) {
        self.model = self.model.take().or(other.model);
        self.task = self.task.take().or(other.task);
        self.dataset = self.dataset.take().or(other.dataset);
        self.fraction = self.fraction.or(other.fraction);
    }
}

/// The dataset that the needed `prepare` stage `name` of `planned` reads, if it reads one.
fn cut_from(plan: &Plan, planned: &PlannedStage, name: Option<&str>) -> Option<String> {
    let name = name?;
    let index = planned.needs.iter().copied().find(|&i| {
        let needed = &plan.stages[i].stage;
        needed.base == name && needed.kind == StageKind::Prepare
    })?;
    Lineage::of(plan, index).dataset
}

/// The dataset a `synth-*` prepare stage imitates, named as its op names it.
fn synthesised(planned: &PlannedStage) -> Option<String> {
    if planned.stage.kind != StageKind::Prepare {
        return None;
    }
    coordinate(planned, "op")?
        .strip_prefix("synth-")
        .map(str::to_string)
}

/// The value of a study coordinate: the stage parameter, else the matrix variable.
fn coordinate(planned: &PlannedStage, name: &str) -> Option<String> {
    let stage = &planned.stage;
    stage
        .params
        .get(name)
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
        .or_else(|| stage.matrix.get(name).cloned())
}

/// A model given as a preset file (`models/vit-s.toml`) is named by the file's stem.
fn preset_name(model: &str) -> String {
    let path = std::path::Path::new(model);
    match (path.extension(), path.file_stem()) {
        (Some(ext), Some(stem)) if ext == "toml" => stem.to_string_lossy().into_owned(),
        _ => model.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_path_is_named_by_its_stem() {
        assert_eq!(preset_name("/home/me/models/vit-s.toml"), "vit-s");
        assert_eq!(preset_name("vit-tiny"), "vit-tiny");
        assert_eq!(preset_name("vit-1.3b"), "vit-1.3b");
    }
}
