//! A researcher's first hour: results that tell the truth (current rows, history, lineage,
//! parameters as columns), training curves, failure reasons, and defaults that fit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{text, worker, Project};

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
    assert_eq!(
        columns,
        ["experiment", "name", "step", "items_per_s", "loss", "lr"]
    );
    let points = curve["rows"].as_array().unwrap();
    assert!(points.len() >= 5, "{curve}");
    assert!(points
        .iter()
        .all(|p| p[4].as_f64().is_some_and(f64::is_finite)));
    // The learning rate follows the schedule: warmup to the recipe's `lr`, then the cosine down.
    let lrs: Vec<f64> = points.iter().map(|p| p[5].as_f64().unwrap()).collect();
    let peak = lrs.iter().copied().fold(0.0, f64::max);
    assert!((peak - 2e-3).abs() < 1e-12, "{lrs:?}");
    assert!(*lrs.last().unwrap() < peak, "{lrs:?}");

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
