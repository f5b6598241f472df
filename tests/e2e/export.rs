//! `rsfm export tensorboard|mlflow`: a tiny MAE pretraining and a tiny segmentation fine-tuning
//! are exported both ways and read back by the trackers' own readers (TensorBoard's
//! `EventAccumulator`, MLflow's `MlflowClient`, in a Python venv cached under the target dir):
//! every scalar and step equals `rsfm results --curve`, final metrics and parameters come
//! along, and a second export adds no point, nor one after a later attempt of a stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{repo_root, text, worker, Project};

/// The Python packages that read the exports back (MLflow's tracking client and file store
/// are its `mlflow-skinny` package).
const READERS: &[&str] = &["tensorboard==2.21.0", "mlflow-skinny==3.18.0"];

fn recipe() -> &'static str {
    r#"
[experiment]
name = "export"

[stage.scenes]
kind = "prepare"
op = "synth-millionaid"
images = 5
size = 32
seed = 1

[stage.pretrain]
kind = "mae-pretrain"
needs = ["scenes"]
dataset = "scenes"
model = "vit-tiny"
steps = 4
batch_size = 2
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2

[stage.potsdam]
kind = "prepare"
op = "synth-potsdam"
images = 6
size = 64
seed = 4

[stage.seg]
kind = "finetune-seg"
needs = ["potsdam"]
dataset = "potsdam"
format = "potsdam"
model = "vit-tiny"
image_size = 32
head_channels = 16
steps = 4
batch_size = 2
log_every = 2
val_tiles = ["2_10"]
"#
}

/// Reads a TensorBoard log dir and an MLflow store with the trackers' own code; prints JSON
/// `{"tensorboard": {run: {"scalars": {tag: [[step, value]]}, "hparams": {name: value},
/// "status": int}}, "mlflow": {run_id: {"experiment", "name", "status", "params", "tags",
/// "metrics": {name: [[step, value, timestamp]]}}}}`.
const READER: &str = r#"
import json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient

tb_root, mlruns = sys.argv[1], sys.argv[2]
tb = {}
for root, _, files in os.walk(tb_root):
    if not any("tfevents" in f for f in files):
        continue
    acc = EventAccumulator(root, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    run = {"scalars": {}, "hparams": {}, "status": None}
    for tag in acc.Tags()["scalars"]:
        run["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    for name, value in start.session_start_info.hparams.items():
        run["hparams"][name] = getattr(value, value.WhichOneof("kind"))
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    run["status"] = end.session_end_info.status
    tb[os.path.relpath(root, tb_root)] = run

client = MlflowClient(tracking_uri="file://" + os.path.abspath(mlruns))
ml = {}
for experiment in client.search_experiments():
    for r in client.search_runs([experiment.experiment_id]):
        rid = r.info.run_id
        ml[rid] = {
            "experiment": experiment.name,
            "name": r.info.run_name,
            "status": r.info.status,
            "params": dict(r.data.params),
            "tags": dict(r.data.tags),
            "metrics": {
                k: [[m.step, m.value, m.timestamp] for m in client.get_metric_history(rid, k)]
                for k in r.data.metrics
            },
        }
print(json.dumps({"tensorboard": tb, "mlflow": ml}))
"#;

/// One stage as `rsfm results` shows it: key, curves (metric → step → value) and final metrics.
struct Expected {
    name: String,
    key: String,
    curves: BTreeMap<String, BTreeMap<i64, f64>>,
    finals: BTreeMap<String, f64>,
}

fn expected(project: &Project) -> Vec<Expected> {
    let rows: Value = serde_json::from_str(&project.ok(&["results", "--json"])).unwrap();
    let mut stages: BTreeMap<String, Expected> = BTreeMap::new();
    for row in rows.as_array().unwrap() {
        let name = row["name"].as_str().unwrap().to_string();
        let stage = stages.entry(name.clone()).or_insert_with(|| Expected {
            name: name.clone(),
            key: row["key"].as_str().unwrap().to_string(),
            curves: BTreeMap::new(),
            finals: BTreeMap::new(),
        });
        if let Some(value) = row["value"].as_f64() {
            stage
                .finals
                .insert(row["metric"].as_str().unwrap().to_string(), value);
        }
    }
    for stage in stages.values_mut() {
        let curve: Value =
            serde_json::from_str(&project.ok(&["results", "--curve", &stage.name, "--json"]))
                .unwrap();
        let columns: Vec<&str> = curve["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for row in curve["rows"].as_array().unwrap() {
            let step = row[2].as_i64().unwrap();
            for (metric, cell) in columns.iter().zip(row.as_array().unwrap()).skip(3) {
                if let Some(value) = cell.as_f64() {
                    stage
                        .curves
                        .entry(metric.to_string())
                        .or_default()
                        .insert(step, value);
                }
            }
        }
    }
    stages.into_values().collect()
}

#[test]
fn tensorboard_and_mlflow_read_back_every_point_once() {
    worker();
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("export.toml", recipe());
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 4, "{summary}");

    let stages = expected(&project);
    assert_eq!(stages.len(), 4);
    let seg = stages.iter().find(|s| s.name == "seg").unwrap();
    assert_eq!(
        seg.curves["loss"].keys().copied().collect::<Vec<_>>(),
        [2, 4],
        "{:?}",
        seg.curves
    );
    let pretrain = stages.iter().find(|s| s.name == "pretrain").unwrap();
    assert!(pretrain.curves["loss"].len() == 4, "{:?}", pretrain.curves);

    let tb_dir = project.results().join("export/tensorboard");
    let mlruns = project.path("mlruns");
    let export = |args: &[&str]| -> Value {
        let stdout = project.ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let recipe_arg = recipe.to_str().unwrap();
    let mlruns_arg = mlruns.to_str().unwrap();
    let tb_args = ["export", "tensorboard", "--json"];
    let ml_args = [
        "export", "mlflow", recipe_arg, "--out", mlruns_arg, "--json",
    ];
    let first = [export(&tb_args), export(&ml_args)];
    let points: usize = stages
        .iter()
        .map(|s| s.curves.values().map(BTreeMap::len).sum::<usize>() + s.finals.len())
        .sum();
    for written in &first {
        assert_eq!(written["runs"].as_array().unwrap().len(), 4, "{written}");
        assert_eq!(written["points"], points, "{written}");
        eprintln!(
            "export {}: {} runs, {} values in {:.3} s",
            written["tracker"], 4, written["points"], written["seconds"]
        );
    }

    let Some(python) = reader_python() else {
        return;
    };
    let read = || read_back(&python, &project, &tb_dir, &mlruns);
    let once = read();
    check_tensorboard(&once["tensorboard"], &stages);
    check_mlflow(&once["mlflow"], &stages);

    // Again: every file is rewritten from the database, so nothing doubles.
    export(&tb_args);
    export(&ml_args);
    assert_eq!(
        read(),
        once,
        "a second export changed what the trackers read"
    );

    // A later attempt of one stage (same key, as after a requeue): its runs are rewritten in
    // place, the events file named after the earlier start is gone.
    let rerun = project.run_json(&recipe, &["--force", "seg"]);
    assert_eq!(rerun["executed"], 1, "{rerun}");
    export(&tb_args);
    export(&ml_args);
    let stages = expected(&project);
    let after = read();
    check_tensorboard(&after["tensorboard"], &stages);
    check_mlflow(&after["mlflow"], &stages);
    for stage in &stages {
        let folder = tb_dir.join(format!("export/{}-{}", stage.name, &stage.key[..12]));
        let events = std::fs::read_dir(&folder)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("tfevents")
            })
            .count();
        assert_eq!(events, 1, "{}: one events file", folder.display());
    }
}

fn check_tensorboard(runs: &Value, stages: &[Expected]) {
    let runs = runs.as_object().unwrap();
    assert_eq!(runs.len(), stages.len(), "{runs:?}");
    for stage in stages {
        let folder = format!("export/{}-{}", stage.name, &stage.key[..12]);
        let run = runs
            .get(&folder)
            .unwrap_or_else(|| panic!("no run {folder} in {:?}", runs.keys()));
        let scalars = run["scalars"].as_object().unwrap();
        let mut wanted: BTreeMap<String, Vec<(i64, f32)>> = stage
            .curves
            .iter()
            .map(|(metric, points)| {
                let points = points.iter().map(|(s, v)| (*s, *v as f32)).collect();
                (metric.clone(), points)
            })
            .collect();
        let last_step = stage
            .curves
            .values()
            .filter_map(|p| p.keys().last().copied())
            .max()
            .unwrap_or(0);
        for (metric, value) in &stage.finals {
            wanted.insert(format!("final/{metric}"), vec![(last_step, *value as f32)]);
        }
        let got: BTreeMap<String, Vec<(i64, f32)>> = scalars
            .iter()
            .map(|(tag, points)| {
                let points = points
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap() as f32))
                    .collect();
                (tag.clone(), points)
            })
            .collect();
        assert_eq!(got, wanted, "{}: TensorBoard's scalars", stage.name);
        assert_eq!(run["status"], 1, "{}: session ended in success", stage.name);
    }
    let seg = &runs[&format!(
        "export/seg-{}",
        &stages.iter().find(|s| s.name == "seg").unwrap().key[..12]
    )];
    assert_eq!(seg["hparams"]["steps"], 4.0, "{seg}");
    assert_eq!(seg["hparams"]["model"], "vit-tiny", "{seg}");
    assert_eq!(seg["hparams"]["format"], "potsdam", "{seg}");
}

fn check_mlflow(runs: &Value, stages: &[Expected]) {
    let runs = runs.as_object().unwrap();
    assert_eq!(runs.len(), stages.len(), "{:?}", runs.keys());
    for stage in stages {
        let run = runs.get(&stage.key).unwrap_or_else(|| {
            panic!("no run {} ({}) in {:?}", stage.key, stage.name, runs.keys())
        });
        assert_eq!(run["experiment"], "export");
        assert_eq!(run["name"], stage.name.as_str());
        assert_eq!(run["status"], "FINISHED");
        assert_eq!(run["tags"]["rsfm.key"], stage.key.as_str());
        assert_eq!(run["tags"]["rsfm.stage"], stage.name.as_str());
        let mut wanted: BTreeMap<String, Vec<(i64, f64)>> = stage
            .curves
            .iter()
            .map(|(m, p)| (m.clone(), p.iter().map(|(s, v)| (*s, *v)).collect()))
            .collect();
        let last_step = wanted
            .values()
            .filter_map(|p| p.last().map(|(s, _)| *s))
            .max()
            .unwrap_or(0);
        for (metric, value) in &stage.finals {
            wanted.insert(format!("final/{metric}"), vec![(last_step, *value)]);
        }
        let got: BTreeMap<String, Vec<(i64, f64)>> = run["metrics"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, points)| {
                let points = points
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
                    .collect();
                (name.clone(), points)
            })
            .collect();
        assert_eq!(got, wanted, "{}: MLflow's metric histories", stage.name);
    }
    let seg = &runs[&stages.iter().find(|s| s.name == "seg").unwrap().key];
    assert_eq!(seg["params"]["steps"], "4", "{seg}");
    assert_eq!(seg["params"]["model"], "vit-tiny", "{seg}");
}

fn read_back(python: &Path, project: &Project, tb_dir: &Path, mlruns: &Path) -> Value {
    let script = project.write("read_exports.py", READER);
    let out = Command::new(python)
        .arg(&script)
        .arg(tb_dir)
        .arg(mlruns)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "reading the exports back failed:\n{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// The venv's Python with [`READERS`] installed, made once under the target dir; `None` (after
/// saying why, on stderr) only when pip cannot reach the package index.
fn reader_python() -> Option<PathBuf> {
    let target = PathBuf::from(env!("CARGO_BIN_EXE_rsfm"))
        .parent()
        .and_then(Path::parent)
        .expect("the target dir")
        .to_path_buf();
    let venv = target.join("export-readers-venv");
    let python = venv.join("bin/python");
    if imports_readers(&python) {
        return Some(python);
    }
    // Built beside and renamed into place, so a half-made venv is never taken for one.
    let building = target.join(format!("export-readers-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&building)
        .output()
        .expect("python3 runs (needed to read the exports back)");
    assert!(
        made.status.success(),
        "python3 -m venv: {}",
        text(&made.stderr)
    );
    let pip = Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(READERS)
        .output()
        .expect("pip runs");
    if !pip.status.success() {
        let output = format!("{}{}", text(&pip.stdout), text(&pip.stderr));
        let _ = std::fs::remove_dir_all(&building);
        let unreachable = [
            "NewConnectionError",
            "Failed to establish a new connection",
            "Temporary failure in name resolution",
            "Network is unreachable",
            "ConnectTimeout",
            "ProxyError",
        ];
        if unreachable.iter().any(|marker| output.contains(marker)) {
            eprintln!(
                "SKIPPED the TensorBoard/MLflow read-back: pip cannot reach the package index to install {READERS:?}:\n{output}"
            );
            return None;
        }
        panic!("pip install {READERS:?} failed:\n{output}");
    }
    if std::fs::rename(&building, &venv).is_err() {
        // Another test process made it meanwhile.
        let _ = std::fs::remove_dir_all(&building);
    }
    assert!(
        imports_readers(&python),
        "{} cannot import tensorboard and mlflow",
        python.display()
    );
    Some(python)
}

fn imports_readers(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", "import tensorboard, mlflow"])
            .output()
            .is_ok_and(|out| out.status.success())
}
