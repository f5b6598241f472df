//! What a stage finds through `stage.json`: dataset roots and the output dirs of the stages
//! it needs, with errors that name the parameter pointing at a missing entry.

use std::path::Path;

use anyhow::Context;

use crate::protocol::StageSpec;

/// The root of dataset `name` (a stage's `params.data.name`) in `stage.json` `datasets`.
pub fn dataset_root<'a>(spec: &'a StageSpec, name: &str) -> anyhow::Result<&'a Path> {
    spec.datasets
        .get(name)
        .map(|root| root.as_path())
        .with_context(|| format!("params.data.name `{name}` is not in stage.json `datasets`"))
}

/// The output dir of the needed stage `name` in `stage.json` `inputs`; `key` is the parameter
/// that names it (`params.pretrained`, `params.model_from`).
pub fn input_dir<'a>(spec: &'a StageSpec, key: &str, name: &str) -> anyhow::Result<&'a Path> {
    spec.inputs
        .get(name)
        .map(|dir| dir.as_path())
        .with_context(|| format!("{key} `{name}` is not in stage.json `inputs`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> StageSpec {
        StageSpec {
            kind: "finetune-seg".into(),
            params: serde_json::json!({}),
            inputs: [("pretrain".to_string(), "/runs/pretrain".into())].into(),
            datasets: [("loveda".to_string(), "/data/loveda".into())].into(),
            device: "cpu".into(),
            seed: 0,
            work_dir: "/work".into(),
        }
    }

    #[test]
    fn present_entries_resolve_and_missing_ones_name_their_parameter() {
        let spec = spec();
        assert_eq!(
            dataset_root(&spec, "loveda").unwrap(),
            Path::new("/data/loveda")
        );
        assert_eq!(
            input_dir(&spec, "params.pretrained", "pretrain").unwrap(),
            Path::new("/runs/pretrain")
        );
        assert_eq!(
            dataset_root(&spec, "potsdam").unwrap_err().to_string(),
            "params.data.name `potsdam` is not in stage.json `datasets`"
        );
        assert_eq!(
            input_dir(&spec, "params.model_from", "seg")
                .unwrap_err()
                .to_string(),
            "params.model_from `seg` is not in stage.json `inputs`"
        );
    }
}
