//! A researcher's first hour: results that tell the truth (current rows, history, lineage,
//! parameters as columns), training curves, failure reasons, and defaults that fit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{repo_root, text, worker, Project};

/// A sweep of command stages: `score` writes `{"score": <its argv value>, "lr": <matrix lr>}`.
const SWEEP: &str = r#"
[experiment]
name = "sweep"

[matrix]
lr = [0.001, 0.1]

[stage.score]
kind = "command"
argv = ["sh", "-c", "printf '{{\"score\": %s, \"lr\": %s}}' \"$0\" \"$1\" > \"$2/metrics.json\"", "SCORE", "{lr}", "{out}"]
"#;

fn sweep(project: &Project, score: &str) -> PathBuf {
    project.write("sweep.toml", &SWEEP.replace("SCORE", score))
}

/// `rsfm results ARGS --json` as an array of row objects.
fn results(project: &Project, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["results"];
    all.extend_from_slice(args);
    all.push("--json");
    let stdout = project.ok(&all);
    serde_json::from_str::<serde_json::Value>(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
        .as_array()
        .expect("an array of rows")
        .clone()
}

/// `(state, value)` of the `score` rows, sorted.
fn scores(rows: &[serde_json::Value]) -> Vec<(String, f64)> {
    let mut scores: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r["metric"] == "score")
        .map(|r| {
            (
                r["state"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    scores.sort_by(|a, b| a.partial_cmp(b).unwrap());
    scores
}

#[test]
fn results_show_current_rows_history_marks_superseded_and_gc_marks_gone() {
    let project = Project::new();
    let recipe = sweep(&project, "1");
    let recipe_arg = recipe.to_str().unwrap();
    project.run_json(&recipe, &[]);
    sweep(&project, "2");
    project.run_json(&recipe, &[]);

    let current = vec![("current".to_string(), 2.0), ("current".to_string(), 2.0)];
    assert_eq!(scores(&results(&project, &[recipe_arg])), current);
    assert_eq!(scores(&results(&project, &[])), current, "latest state");
    let history = results(&project, &["--all"]);
    assert_eq!(
        scores(&history),
        vec![
            ("current".to_string(), 2.0),
            ("current".to_string(), 2.0),
            ("superseded".to_string(), 1.0),
            ("superseded".to_string(), 1.0)
        ]
    );
    assert!(history.iter().all(|r| r["finished_at"].is_string()));

    // A rerun that finds everything cached keeps saying how the result was produced.
    let again = project.run_json(&recipe, &[]);
    assert_eq!(again["cached"], 2, "{again}");
    let rows = results(&project, &[recipe_arg]);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");

    // gc removes the superseded entries; their rows are gone, not cached.
    project.ok(&["cache", "gc", recipe_arg]);
    let states: Vec<String> = scores(&results(&project, &["--all"]))
        .into_iter()
        .map(|(state, _)| state)
        .collect();
    assert_eq!(states, ["current", "current", "gone", "gone"]);

    // Matrix variables are typed and queryable; the wide view puts them beside the metrics.
    let cheap = results(&project, &["--where", "matrix.lr < 0.01 and metric = 'lr'"]);
    assert_eq!(cheap.len(), 1, "{cheap:?}");
    assert_eq!(cheap[0]["value"].as_f64(), Some(0.001));
    let liked = results(&project, &["--where", "name like 'score@0.1%'"]);
    assert_eq!(liked.len(), 2, "{liked:?}");
    let wide = project.ok(&[
        "results",
        "--wide",
        "--sort",
        "matrix.lr",
        "--desc",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = wide.lines().collect();
    assert!(
        lines[0].contains(",matrix.lr,") && lines[0].ends_with(",lr,score"),
        "columns: {}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("sweep,score@0.1,") && lines[1].ends_with(",0.1,2"),
        "largest lr first: {wide}"
    );
    assert_eq!(lines.len(), 3, "{wide}");
}

/// A tiny segmentation study: synthetic LoveDA, 6 steps of `finetune-seg` on vit-tiny (a
/// progress event per step), and an evaluation of the fine-tuned model.
const TINY_SEG: &str = r#"
[experiment]
name = "tiny-seg"

[stage.loveda]
kind = "command"
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth loveda --out \"$1\" --images 6 --size 32 --seed 2", "sh", "{out}"]

[stage.finetune]
kind = "finetune-seg"
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
model = "vit-tiny"
image_size = 32
window_size = 2
head_channels = 16
steps = 6
batch_size = 2
lr = 2e-3
warmup_steps = 1

[stage.evaluate]
kind = "evaluate"
needs = ["finetune", "loveda"]
dataset = "loveda"
format = "loveda"
"#;

#[test]
fn a_tiny_training_stage_keeps_its_curve_and_its_evaluation_names_what_it_scored() {
    let project = Project::new();
    // The preset is found from a recipe outside the repository.
    let recipe = project.write("tiny.toml", TINY_SEG);
    let out = project
        .command(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .expect("rsfm runs");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Without a terminal: one line per stage start and finish, with duration and metrics.
    assert!(stderr.contains("started  tiny-seg/finetune"), "{stderr}");
    let finished = stderr
        .lines()
        .find(|l| l.contains("finished tiny-seg/evaluate in "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(finished.contains("miou "), "{finished}");
    assert!(stderr.contains(&format!("results in {}", project.results().display())));

    let curve: serde_json::Value =
        serde_json::from_str(&project.ok(&["results", "--curve", "finetune", "--json"])).unwrap();
    let columns: Vec<&str> = curve["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // The segmenter's loss components (tests/e2e/curves.rs) are columns of their own.
    assert_eq!(
        columns,
        [
            "experiment",
            "name",
            "step",
            "items_per_s",
            "loss",
            "loss.aux",
            "loss.main",
            "lr"
        ]
    );
    let points = curve["rows"].as_array().unwrap();
    assert!(points.len() >= 5, "{curve}");
    assert!(points
        .iter()
        .all(|p| p[4].as_f64().is_some_and(f64::is_finite)));
    // The learning rate follows the default poly schedule (power 1): the recipe's `lr` decayed
    // linearly over the steps, scaled by the warmup, so it peaks as the warmup ends and falls.
    let lrs: Vec<f64> = points.iter().map(|p| p[7].as_f64().unwrap()).collect();
    let steps = lrs.len() as f64;
    for (step, lr) in lrs.iter().enumerate().skip(1) {
        let expected = 2e-3 * (1.0 - step as f64 / steps);
        assert!((lr - expected).abs() < 1e-12, "step {step}: {lrs:?}");
    }

    let scored = results(&project, &["--model", "vit-tiny", "--metric", "miou"]);
    assert_eq!(scored.len(), 1, "{scored:?}");
    assert_eq!(scored[0]["name"], "evaluate");
    assert_eq!(scored[0]["task"], "segmentation");
    assert_eq!(scored[0]["dataset"], "loveda");
    assert_eq!(scored[0]["seed"], 0);
    let by_param = results(
        &project,
        &[
            "--where",
            "params.lr < 1e-2 and params.steps = 6 and metric = 'loss_final'",
        ],
    );
    assert_eq!(by_param.len(), 1, "{by_param:?}");
    assert_eq!(by_param[0]["name"], "finetune");

    let log = std::fs::read_to_string(
        project
            .results()
            .join("work")
            .join(scored_key(&project, "finetune"))
            .join("stage.log"),
    )
    .unwrap();
    assert!(log.contains("tiny-seg/finetune (key "), "{log}");
    assert!(log.contains("attempt 1/1 on cpu"), "{log}");
    assert!(log.contains(r#""event":"progress""#), "{log}");
}

/// The full key of the current row of stage `name`.
fn scored_key(project: &Project, name: &str) -> String {
    let rows = project.sql(&format!(
        "SELECT key FROM current_stages WHERE name = '{name}'"
    ));
    rows[0]["key"].as_str().unwrap().to_string()
}

const BROKEN: &str = r#"
[experiment]
name = "broken"

[stage.prepare]
kind = "command"
argv = ["true"]

[stage.train]
kind = "command"
needs = ["prepare"]
argv = ["sh", "-c", "echo 'step 1 loss 0.9' >&2; echo 'loss is NaN at step 2' >&2; exit 1"]
"#;

#[test]
fn a_failure_shows_its_reason_in_run_and_status() {
    let project = Project::new();
    let recipe = project.write("broken.toml", BROKEN);
    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let failed = stderr
        .find("failed: broken/train")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stderr[failed..].contains("    loss is NaN at step 2"),
        "{stderr}"
    );
    let status = project.ok(&["status"]);
    assert!(status.contains("failed: exited with status 1"), "{status}");
    assert!(status.contains("loss is NaN at step 2"), "{status}");
}

#[test]
fn force_names_known_stages_and_dry_run_shows_forced_ones() {
    let project = Project::new();
    let recipe = project.write("broken.toml", BROKEN);
    let recipe_arg = recipe.to_str().unwrap();
    let out = project.rsfm(&["run", recipe_arg, "--force", "trian", "--gpus", "none"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--force `trian`"), "{stderr}");
    assert!(stderr.contains("stages: prepare, train"), "{stderr}");

    let other = project.write("other.toml", &BROKEN.replace("\"broken\"", "\"other\""));
    // `train` fails; `prepare` runs and is cached.
    project.rsfm(&["run", other.to_str().unwrap(), "--gpus", "none"]);
    let dry = project.ok(&[
        "run",
        other.to_str().unwrap(),
        "--dry-run",
        "--force",
        "prepare",
    ]);
    assert!(dry.contains("forced    other/prepare"), "{dry}");
    let plan = project.ok(&["plan", recipe_arg, other.to_str().unwrap()]);
    assert!(plan.contains("other/prepare"), "several recipes: {plan}");
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn read_only_commands_leave_the_database_alone() {
    let project = Project::new();
    let recipe = sweep(&project, "1");
    let recipe_arg = recipe.to_str().unwrap();
    project.run_json(&recipe, &[]);
    let db = project.results().join("rsfm.db");
    let before = mtime(&db);
    let size = std::fs::metadata(&db).unwrap().len();
    for args in [
        vec!["results"],
        vec!["results", recipe_arg],
        vec!["sql", "SELECT count(*) FROM stages"],
        vec!["status"],
        vec!["plan", recipe_arg],
        vec!["explain", recipe_arg],
        vec!["cache", "ls"],
    ] {
        project.ok(&args);
        assert_eq!(mtime(&db), before, "rsfm {args:?} changed rsfm.db");
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), size);
}

/// `rsfm ARGS` in `dir` with no `--results`, with `RSFM_RESULTS` set to `env`.
fn rsfm_in(dir: &Path, env: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rsfm"))
        .args(args)
        .current_dir(dir)
        .env("RSFM_RESULTS", env)
        .output()
        .expect("rsfm runs")
}

#[test]
fn the_default_results_dir_is_at_the_project_root_and_an_empty_env_counts_as_unset() {
    let project = Project::new();
    project.write("rsfm.toml", "");
    let recipe = sweep(&project, "1");
    let nested = project.path("notes/today");
    std::fs::create_dir_all(&nested).unwrap();
    let out = rsfm_in(&nested, "", &["plan", recipe.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let root = project.dir.path().canonicalize().unwrap();
    assert!(
        stderr.contains(&format!("results in {}", root.join("results").display())),
        "{stderr}"
    );
}

#[test]
fn set_overrides_a_value_checked_like_the_recipe_and_explain_names_it() {
    let project = Project::new();
    let recipe = sweep(&project, "1");
    let recipe_arg = recipe.to_str().unwrap();
    project.run_json(&recipe, &[]);
    let set = "stage.score.seed=7";
    let dry = project.ok(&["run", recipe_arg, "--set", set, "--dry-run"]);
    assert!(dry.contains("would run sweep/score@0.1"), "{dry}");
    let explained = project.ok(&["explain", recipe_arg, "score@0.1", "--set", set]);
    assert!(
        explained.contains("stage.score.seed = 7  (origin: cli)"),
        "{explained}"
    );
    assert!(explained.contains("seed: 0 -> 7"), "{explained}");
    let shown = project.ok(&["config", "show", recipe_arg, "--origin", "--set", set]);
    assert!(
        shown.contains("# cli (--set stage.score.seed=7)"),
        "{shown}"
    );
    // Checked like a value in the recipe; a typo in the stage name lists the stages.
    let out = project.rsfm(&["plan", recipe_arg, "--set", "stage.score.seed=\"x\""]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = project.rsfm(&["plan", recipe_arg, "--set", "stage.scroe.seed=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("(there: score)"),
        "{}",
        text(&out.stderr)
    );
    project.run_json(&recipe, &["--set", set]);
    let rows = results(&project, &["--where", "seed = 7 and metric = 'score'"]);
    assert_eq!(rows.len(), 2, "{rows:?}");
}

#[test]
fn config_show_into_a_closed_pipe_exits_0() {
    let project = Project::new();
    // More output than a pipe holds, so `head` closes the pipe while rsfm still writes.
    let long = "x".repeat(200_000);
    let recipe = project.write(
        "long.toml",
        &format!("[experiment]\nname = \"long\"\n\n[stage.a]\nkind = \"command\"\nargv = [\"echo\", \"{long}\"]\n"),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' config show '{}' --origin | head -1 >/dev/null",
            env!("CARGO_BIN_EXE_rsfm"),
            recipe.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// A tiny `finetune-seg` stage that leaves its window to the model preset and its weight decay
/// to the schema.
const RESOLVED_SEG: &str = r#"
[experiment]
name = "resolved"

[stage.loveda]
kind = "command"
argv = ["true"]

[stage.finetune]
kind = "finetune-seg"
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
model = "vit-tiny"
steps = 2
batch_size = 2
lr = 2e-3
"#;

/// The 1-based number of the first line of `text` that starts with `KEY =`.
fn line_of(text: &str, key: &str) -> usize {
    let start = format!("{key} =");
    1 + text
        .lines()
        .position(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("no `{start}` in {text}"))
}

#[test]
fn config_show_resolved_gives_every_value_of_a_stage_with_its_origin() {
    let project = Project::new();
    let preset_text =
        std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    let preset = project.write("recipes/models/vit-tiny.toml", &preset_text);
    let recipe = project.write("recipes/seg.toml", RESOLVED_SEG);
    let recipe_arg = recipe.to_str().unwrap();
    let set = "stage.finetune.batch_size=4";
    let args = ["config", "show", recipe_arg, "--resolved", "--set", set];
    let json = project.ok(&[&args[..], &["--json"]].concat());
    let stages: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let stages = stages.as_array().expect("an array of stages");
    assert_eq!(stages.len(), 1, "worker stages only: {json}");
    assert_eq!(stages[0]["stage"], "finetune");
    let values: std::collections::BTreeMap<String, (serde_json::Value, String)> = stages[0]
        ["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let origin = v["origin"].as_str().unwrap().to_string();
            (
                v["key"].as_str().unwrap().to_string(),
                (v["value"].clone(), origin),
            )
        })
        .collect();
    let at = |file: &Path, line: usize| format!("{}:{line}:1", file.display());

    let preset_line = line_of(&preset_text, "window_size");
    assert_eq!(
        values["window_size"],
        (
            serde_json::json!(2),
            format!("preset {}", at(&preset, preset_line))
        )
    );
    assert_eq!(
        values["model.embed_dim"],
        (
            serde_json::json!(64),
            format!("preset {}", at(&preset, line_of(&preset_text, "embed_dim")))
        )
    );
    let recipe_line = line_of(RESOLVED_SEG, "lr");
    assert_eq!(
        values["lr"],
        (
            serde_json::json!(2e-3),
            format!("recipe {}", at(&recipe, recipe_line))
        )
    );
    assert_eq!(
        values["batch_size"],
        (serde_json::json!(4), format!("cli (--set {set})"))
    );

    // Every key of the schema appears; the ones nothing sets with the schema's default.
    let kinds = project.ok(&["kinds", "finetune-seg", "--json"]);
    let kinds: serde_json::Value = serde_json::from_str(&kinds).unwrap();
    let schema = kinds
        .as_array()
        .map_or(&kinds["params"], |all| &all[0]["params"])
        .as_array()
        .unwrap();
    assert!(schema.len() > 20, "{kinds}");
    for param in schema {
        let name = param["name"].as_str().unwrap();
        assert!(values.contains_key(name), "{name} missing from {json}");
    }
    let weight_decay = schema.iter().find(|p| p["name"] == "weight_decay").unwrap();
    assert_eq!(
        values["weight_decay"],
        (weight_decay["default"].clone(), "default".to_string())
    );

    // The table: one aligned row per key, origins in the last column.
    let table = project.ok(&args);
    assert!(
        table.starts_with("[stage.finetune]  finetune-seg\n"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("window_size "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.ends_with(&format!("preset {}", at(&preset, preset_line))),
        "{row}"
    );
    let origin_column: Vec<usize> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            ["recipe ", "preset ", "default"]
                .iter()
                .find_map(|o| l.find(o))
        })
        .collect();
    assert!(
        origin_column.windows(2).all(|w| w[0] == w[1]),
        "aligned: {table}"
    );
}
