//! Worker stages are keyed on the code that actually runs them: the sha256 of the `rsfm-worker`
//! in use (and of the libtorch it loads), so a modified worker, or `RSFM_WORKER` pointing at
//! another one, makes every worker stage pending and `explain` says why; `command` stages keep
//! their keys.

use std::path::Path;

use crate::common::{last_json_line, repo_root, text, worker, Project};

/// A synthetic Million-AID `command` stage and a two-step MAE pretraining of vit-tiny on it.
fn recipe(project: &Project) -> std::path::PathBuf {
    let preset = repo_root().join("recipes/models/vit-tiny.toml");
    project.write(
        "identity.toml",
        &format!(
            r#"[experiment]
name = "identity"

[stage.data]
kind = "command"
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth millionaid --out \"$1\" --images 4 --size 32 --seed 1", "sh", "{{out}}"]

[stage.pretrain]
kind = "mae-pretrain"
needs = ["data"]
dataset = "data"
model = "{}"
steps = 2
batch_size = 2
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2
"#,
            preset.display()
        ),
    )
}

/// `(stage name, status)` of `rsfm plan --json` run with `RSFM_WORKER=worker`.
fn statuses(project: &Project, recipe: &Path, worker: &Path) -> Vec<(String, String)> {
    let out = project
        .command(&["plan", recipe.to_str().unwrap(), "--json"])
        .env("RSFM_WORKER", worker)
        .output()
        .expect("rsfm runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    plan["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn another_worker_makes_worker_stages_pending_and_explain_names_it() {
    let project = Project::new();
    let recipe = recipe(&project);
    let out = project
        .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .expect("rsfm runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(last_json_line(&text(&out.stdout))["executed"], 2);
    let cached = |s: &str| (s.to_string(), "cached".to_string());
    assert_eq!(
        statuses(&project, &recipe, &worker()),
        [cached("data"), cached("pretrain")]
    );

    // The same program with one byte more: another executable, as after any rebuild.
    let modified = project.path("bin/rsfm-worker");
    std::fs::create_dir_all(modified.parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(worker()).unwrap();
    bytes.push(0);
    std::fs::write(&modified, bytes).unwrap();
    let mut permissions = std::fs::metadata(&modified).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&modified, permissions).unwrap();

    assert_eq!(
        statuses(&project, &recipe, &modified),
        [cached("data"), ("pretrain".into(), "pending".into())]
    );
    let out = project
        .command(&["explain", recipe.to_str().unwrap(), "pretrain"])
        .env("RSFM_WORKER", &modified)
        .output()
        .expect("rsfm runs");
    let explained = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        explained.contains("worker.executable"),
        "explain does not name the worker: {explained}"
    );
    assert!(
        !explained.contains("worker.libtorch"),
        "the libtorch did not change: {explained}"
    );
    // Back to the original worker: everything is cached again.
    assert_eq!(
        statuses(&project, &recipe, &worker()),
        [cached("data"), cached("pretrain")]
    );
}

#[test]
fn a_missing_worker_is_bad_input_with_the_fix() {
    let project = Project::new();
    let recipe = recipe(&project);
    let out = project
        .command(&["plan", recipe.to_str().unwrap()])
        .env("RSFM_WORKER", project.path("no-such-worker"))
        .output()
        .expect("rsfm runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-worker") && stderr.contains("make worker"),
        "{stderr}"
    );
}
