//! Turns a planned stage into the command line that runs it: the recipe's argv for `command`
//! stages, `rsfm prepare --stage stage.json --out DIR` (this very `rsfm`) for `prepare` stages,
//! `rsfm-worker run --stage stage.json --out DIR` for the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rsfm_model::protocol::StageSpec;

use crate::plan::PlannedStage;
use crate::recipe::{substitute, substitute_json, StageKind};

/// Paths a stage runs with.
#[derive(Debug, Clone)]
pub struct StagePaths {
    /// The output dir (`{out}`), a build dir under `results/tmp/`.
    pub out: PathBuf,
    /// The work dir that survives failures (`results/work/<key>/`).
    pub work: PathBuf,
    /// Cache entry dirs of the needed stages, by base name.
    pub inputs: BTreeMap<String, PathBuf>,
}

/// The argv of the stage. Worker stages also get `stage.json` written into the work dir.
pub fn stage_argv(
    planned: &PlannedStage,
    paths: &StagePaths,
    device: &str,
    worker: &Path,
) -> anyhow::Result<Vec<String>> {
    let stage = &planned.stage;
    let lookup = |name: &str| -> Option<String> {
        if name == "out" {
            return Some(paths.out.display().to_string());
        }
        if let Some(input) = name.strip_prefix("input.") {
            return paths.inputs.get(input).map(|p| p.display().to_string());
        }
        let dataset = name.strip_prefix("dataset.")?;
        planned
            .datasets
            .iter()
            .find(|(n, _)| n == dataset)
            .map(|(_, root)| root.display().to_string())
    };
    let undefined = |name: String| {
        anyhow::anyhow!(
            "{}: stage `{}`: undefined placeholder `{{{name}}}`",
            stage.location,
            stage.name
        )
    };
    if stage.kind == StageKind::Command {
        let argv = stage
            .params
            .get("argv")
            .and_then(|a| a.as_array())
            .with_context(|| {
                format!(
                    "{}: command stage `{}` has no argv",
                    stage.location, stage.name
                )
            })?;
        return argv
            .iter()
            .map(|item| substitute(item.as_str().unwrap_or_default(), &lookup).map_err(undefined))
            .collect();
    }
    let worker_params = planned.worker_params.as_ref().with_context(|| {
        format!(
            "{}: stage `{}` of kind `{}` has no worker parameters",
            stage.location, stage.name, stage.kind
        )
    })?;
    let params = substitute_json(
        &serde_json::Value::Object(worker_params.params.clone()),
        &lookup,
    )
    .map_err(undefined)?;
    let mut datasets: BTreeMap<String, PathBuf> = planned.datasets.iter().cloned().collect();
    for name in &worker_params.dataset_inputs {
        let dir = paths.inputs.get(name).with_context(|| {
            format!(
                "{}: stage `{}` reads the output of `{name}`, which is not among its inputs",
                stage.location, stage.name
            )
        })?;
        datasets.insert(name.clone(), dir.clone());
    }
    let spec = StageSpec {
        kind: stage.kind.as_str().to_string(),
        params,
        inputs: paths.inputs.clone(),
        datasets,
        device: device.to_string(),
        seed: stage.seed,
        work_dir: paths.work.clone(),
    };
    let spec_path = paths.work.join("stage.json");
    fs_err::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
    let program = if stage.kind == StageKind::Prepare {
        [
            std::env::current_exe()
                .context("locating the running rsfm executable, which runs prepare stages")?
                .display()
                .to_string(),
            "prepare".into(),
        ]
    } else {
        [worker.display().to_string(), "run".into()]
    };
    Ok(program
        .into_iter()
        .chain([
            "--stage".into(),
            spec_path.display().to_string(),
            "--out".into(),
            paths.out.display().to_string(),
        ])
        .collect())
}

/// Finds `rsfm-worker`: `$RSFM_WORKER`, else beside the running `rsfm`, else on `PATH`.
pub fn find_worker() -> PathBuf {
    if let Some(path) = std::env::var_os("RSFM_WORKER") {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("rsfm-worker");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("rsfm-worker")
}
