//! `rsfm export mlflow`: an MLflow file store (`mlruns/`), as MLflow's `FileStore` reads it.
//!
//! - One experiment per rsfm experiment: `mlruns/<id>/meta.yaml`. An experiment of that name
//!   already in the store is reused; a new one gets the id `rsfm-<12 hex of sha256(name)>`, so
//!   exports into separate stores agree. A store created here also gets MLflow's `Default`
//!   experiment `0` and `.trash/`, as MLflow creates them.
//! - One run per stage, its id the stage key: `mlruns/<id>/<key>/meta.yaml`, `params/<name>`
//!   (the text value), `tags/<name>`, `metrics/<name>` (lines `timestamp_ms value step`).
//! - Every export rewrites the files it owns from `rsfm.db` (the run's meta.yaml, and each
//!   param, tag and metric file it writes), so points are never repeated; files others added to
//!   a run stay.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::source::ExportStage;
use super::{write_atomically, FINAL_PREFIX};

/// MLflow's id of its default experiment, which a new store holds.
const DEFAULT_EXPERIMENT_ID: &str = "0";
/// The folder MLflow moves deleted experiments and runs to.
const TRASH: &str = ".trash";
/// MLflow's folders inside an experiment that are not runs.
const EXPERIMENT_FOLDERS: [&str; 4] = ["tags", "datasets", "traces", "models"];

/// Writes `stages` into the MLflow file store at `root` (created when missing); returns each
/// stage's run folder, in order.
pub fn write_store(root: &Path, stages: &[ExportStage]) -> anyhow::Result<Vec<PathBuf>> {
    if !root.exists() {
        fs_err::create_dir_all(root)?;
        write_experiment_meta(root, DEFAULT_EXPERIMENT_ID, "Default", 0)?;
    }
    fs_err::create_dir_all(root.join(TRASH))?;
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut runs = Vec::with_capacity(stages.len());
    for stage in stages {
        let experiment = stage.experiment.as_str();
        if !ids.contains_key(experiment) {
            let id = match find_experiment(root, experiment)? {
                Some(id) => id,
                None => {
                    let id = derived_experiment_id(experiment);
                    let created = stages
                        .iter()
                        .filter(|s| s.experiment == experiment)
                        .filter_map(|s| s.started_ms)
                        .min()
                        .unwrap_or(0);
                    write_experiment_meta(root, &id, experiment, created)?;
                    id
                }
            };
            ids.insert(experiment, id);
        }
        runs.push(write_run(root, &ids[experiment], stage)?);
    }
    Ok(runs)
}

/// The id of the experiment named `name` in the store, read from the experiments' meta.yaml.
fn find_experiment(root: &Path, name: &str) -> anyhow::Result<Option<String>> {
    for entry in fs_err::read_dir(root)? {
        let entry = entry?;
        let meta = entry.path().join("meta.yaml");
        if entry.file_name() == TRASH || !meta.is_file() {
            continue;
        }
        let text = fs_err::read_to_string(&meta)?;
        let found = text
            .lines()
            .filter_map(|line| line.strip_prefix("name: "))
            .any(|value| yaml_scalar(value).as_deref() == Some(name));
        if found {
            return Ok(Some(entry.file_name().to_string_lossy().into_owned()));
        }
    }
    Ok(None)
}

/// A one-line YAML scalar as MLflow's YAML writer leaves it: plain, single-quoted (`''` for a
/// quote) or double-quoted (read as JSON, whose escapes it uses for such names).
fn yaml_scalar(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with('"') {
        serde_json::from_str(text).ok()
    } else if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(inner.replace("''", "'"))
    } else {
        Some(text.to_string())
    }
}

/// A stable id for a new experiment (MLflow accepts `[A-Za-z0-9][A-Za-z0-9_-]{0,63}`).
fn derived_experiment_id(name: &str) -> String {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    format!("rsfm-{}", &digest[..12])
}

fn write_experiment_meta(root: &Path, id: &str, name: &str, created_ms: i64) -> anyhow::Result<()> {
    let dir = root.join(id);
    fs_err::create_dir_all(&dir)?;
    let meta = format!(
        "artifact_location: {}\ncreation_time: {created_ms}\nexperiment_id: {}\n\
         last_update_time: {created_ms}\nlifecycle_stage: active\nname: {}\n",
        yaml_string(&file_uri(&dir)?),
        yaml_string(id),
        yaml_string(name),
    );
    write_atomically(&dir.join("meta.yaml"), meta.as_bytes())
}

/// Writes (or rewrites) the run of `stage` in experiment `experiment_id`.
fn write_run(root: &Path, experiment_id: &str, stage: &ExportStage) -> anyhow::Result<PathBuf> {
    let dir = root.join(experiment_id).join(&stage.key);
    if EXPERIMENT_FOLDERS.contains(&stage.key.as_str()) {
        anyhow::bail!("stage key `{}` is a reserved MLflow folder name", stage.key);
    }
    fs_err::create_dir_all(dir.join("artifacts"))?;
    let end_time = match stage.status.as_str() {
        "running" => "null".to_string(),
        _ => stage.point_time_ms().to_string(),
    };
    let meta = format!(
        "artifact_uri: {}\nend_time: {end_time}\nentry_point_name: ''\nexperiment_id: {}\n\
         lifecycle_stage: active\nrun_id: {key}\nrun_name: {}\nrun_uuid: {key}\nsource_name: ''\n\
         source_type: 4\nsource_version: ''\nstart_time: {}\nstatus: {}\ntags: []\nuser_id: rsfm\n",
        yaml_string(&file_uri(&dir.join("artifacts"))?),
        yaml_string(experiment_id),
        yaml_string(&stage.name),
        stage.started_ms.unwrap_or_else(|| stage.point_time_ms()),
        run_status(&stage.status),
        key = yaml_string(&stage.key),
    );
    write_atomically(&dir.join("meta.yaml"), meta.as_bytes())?;
    for (name, value) in &stage.params {
        write_entry(&dir, "params", name, &value.render())?;
    }
    let tags = [
        ("mlflow.runName", stage.name.as_str()),
        ("rsfm.stage", stage.name.as_str()),
        ("rsfm.experiment", stage.experiment.as_str()),
        ("rsfm.kind", stage.kind.as_str()),
        ("rsfm.key", stage.key.as_str()),
        ("rsfm.status", stage.status.as_str()),
    ];
    for (name, value) in tags {
        write_entry(&dir, "tags", name, value)?;
    }
    let time = stage.point_time_ms();
    for (metric, points) in &stage.curves {
        let mut lines = String::new();
        for (step, value) in points {
            let _ = writeln!(lines, "{time} {} {step}", number(*value));
        }
        write_entry(&dir, "metrics", metric, &lines)?;
    }
    let last_step = stage.last_step();
    for (metric, value) in &stage.finals {
        let line = format!("{time} {} {last_step}\n", number(*value));
        write_entry(&dir, "metrics", &format!("{FINAL_PREFIX}{metric}"), &line)?;
    }
    Ok(dir)
}

/// Writes `text` to `<run>/<folder>/<name>` (a `/` in the name is a subfolder, as in MLflow).
fn write_entry(run: &Path, folder: &str, name: &str, text: &str) -> anyhow::Result<()> {
    let name = mlflow_name(name);
    let path = run.join(folder).join(&name);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    write_atomically(&path, text.as_bytes())
        .with_context(|| format!("writing MLflow {folder} entry `{name}`"))
}

/// `name` as MLflow accepts a metric, param or tag name: ASCII letters, digits, `_ - . : /` and
/// spaces, no empty, `.` or `..` path part; anything else becomes `_`.
pub fn mlflow_name(name: &str) -> String {
    let parts: Vec<String> = name
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let part: String = part
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-.: ".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if part == "." || part == ".." {
                "_".repeat(part.len())
            } else {
                part
            }
        })
        .collect();
    if parts.is_empty() {
        "_".into()
    } else {
        parts.join("/")
    }
}

/// MLflow's `RunStatus` number of a stage status.
fn run_status(status: &str) -> u8 {
    match status {
        "running" => 1,
        "succeeded" | "cached" => 3,
        "failed" => 4,
        "interrupted" => 5,
        _ => 2,
    }
}

/// A value as Python's `float()` reads it back exactly (Rust prints the shortest round trip).
fn number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        value.to_string()
    }
}

/// A YAML scalar that reads back as this exact string: JSON's double-quoted form, which YAML's
/// double-quoted style reads the same way.
fn yaml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn file_uri(path: &Path) -> anyhow::Result<String> {
    let path =
        std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))?;
    Ok(format!("file://{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixtures::sample_stage;

    #[test]
    fn names_mlflow_would_refuse_are_made_safe() {
        assert_eq!(mlflow_name("loss.rpn_cls"), "loss.rpn_cls");
        assert_eq!(mlflow_name("final/miou"), "final/miou");
        assert_eq!(mlflow_name("a@b,c"), "a_b_c");
        assert_eq!(mlflow_name("/../x//y/."), "__/x/y/_");
        assert_eq!(mlflow_name(""), "_");
    }

    #[test]
    fn a_run_holds_meta_params_tags_and_metric_lines() {
        let root = tempfile::tempdir().unwrap();
        let mlruns = root.path().join("mlruns");
        let stage = sample_stage();
        let runs = write_store(&mlruns, std::slice::from_ref(&stage)).unwrap();
        let id = derived_experiment_id("smoke");
        assert_eq!(runs, [mlruns.join(&id).join(&stage.key)]);
        let run = &runs[0];
        let read = |rel: &str| fs_err::read_to_string(run.join(rel)).unwrap();
        assert_eq!(
            read("metrics/loss"),
            "1700000060500 1.5 2\n1700000060500 1.25 4\n"
        );
        assert_eq!(read("metrics/final/miou"), "1700000060500 0.5 4\n");
        assert_eq!(read("params/lr"), "0.01");
        assert_eq!(read("params/model"), "vit-tiny");
        assert_eq!(read("tags/rsfm.key"), stage.key);
        assert_eq!(read("tags/mlflow.runName"), "finetune@vit-tiny");
        let meta = read("meta.yaml");
        assert!(
            meta.contains(&format!("\nrun_id: \"{}\"\n", stage.key)),
            "{meta}"
        );
        assert!(meta.contains("\nstatus: 3\n"), "{meta}");
        assert!(meta.contains("\nstart_time: 1700000000000\n"), "{meta}");
        let experiment = fs_err::read_to_string(mlruns.join(&id).join("meta.yaml")).unwrap();
        assert!(experiment.contains("\nname: \"smoke\"\n"), "{experiment}");
        assert!(
            mlruns.join("0/meta.yaml").is_file(),
            "the default experiment"
        );
    }

    #[test]
    fn a_second_export_rewrites_and_reuses_the_experiment() {
        let root = tempfile::tempdir().unwrap();
        let mlruns = root.path().join("mlruns");
        let mut stage = sample_stage();
        // An experiment of that name that MLflow made, with its own id.
        write_experiment_meta(&mlruns, "42", "smoke", 5).unwrap();
        write_store(&mlruns, std::slice::from_ref(&stage)).unwrap();
        stage.curves.get_mut("loss").unwrap().push((6, 1.0));
        let runs = write_store(&mlruns, std::slice::from_ref(&stage)).unwrap();
        assert_eq!(runs, [mlruns.join("42").join(&stage.key)]);
        let loss = fs_err::read_to_string(runs[0].join("metrics/loss")).unwrap();
        assert_eq!(loss.lines().count(), 3, "{loss}");
        assert!(!mlruns.join(derived_experiment_id("smoke")).exists());
    }

    #[test]
    fn an_experiment_mlflow_wrote_is_found_by_name() {
        let root = tempfile::tempdir().unwrap();
        for (id, name) in [
            ("7", "name: smoke"),
            ("8", "name: 'it''s'"),
            ("9", "name: \"a: b\""),
        ] {
            fs_err::create_dir_all(root.path().join(id)).unwrap();
            let meta = format!("experiment_id: '{id}'\nlifecycle_stage: active\n{name}\n");
            fs_err::write(root.path().join(id).join("meta.yaml"), meta).unwrap();
        }
        let find = |name| find_experiment(root.path(), name).unwrap();
        assert_eq!(find("smoke").as_deref(), Some("7"));
        assert_eq!(find("it's").as_deref(), Some("8"));
        assert_eq!(find("a: b").as_deref(), Some("9"));
        assert_eq!(find("other"), None);
    }

    #[test]
    fn yaml_strings_quote_what_yaml_would_misread() {
        assert_eq!(yaml_string("0"), "\"0\"");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }
}
