//! Worker stages are keyed on the code that actually runs them: the build identity of the
//! `rsfm-worker` in use (what it was compiled from and how) and the libtorch it loads, so a
//! worker built from other sources, or `RSFM_WORKER` pointing at one, makes every worker stage
//! pending and `explain` names the part that changed, while a rebuild of the same sources (other
//! bytes, same identity) keeps them cached; `command` stages keep their keys.

use std::path::{Path, PathBuf};

use crate::common::{last_json_line, repo_root, text, worker, Project};

/// A synthetic Million-AID `command` stage and a two-step MAE pretraining of vit-tiny on it.
fn recipe(project: &Project) -> PathBuf {
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

    // Other bytes, same build identity (what a rebuild of the same sources gives): cached.
    let mut bytes = std::fs::read(worker()).unwrap();
    bytes.push(0);
    let rebuilt = write_executable(&project, "rebuilt/rsfm-worker", &bytes);
    assert_eq!(
        statuses(&project, &recipe, &rebuilt),
        [cached("data"), cached("pretrain")]
    );

    // A worker compiled from other sources: its identity's `sources` hash differs.
    let marker = b"\"sources\":\"";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the worker carries its build identity")
        + marker.len();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let modified = write_executable(&project, "bin/rsfm-worker", &bytes);

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
        explained.contains("worker.build.sources"),
        "explain does not name the worker's sources: {explained}"
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

/// Writes `bytes` as an executable file at `relative` in the project.
fn write_executable(project: &Project, relative: &str, bytes: &[u8]) -> PathBuf {
    let path = project.path(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).unwrap();
    path
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
