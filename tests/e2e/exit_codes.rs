//! Every subcommand's bad input exits 2 through the one exit decision, printing one message
//! that names the problem; a closed stdout ends quietly with 0.

use std::io::Read;
use std::process::Stdio;

use crate::common::{repo_root, text, Project};

const RECIPE: &str =
    "[experiment]\nname = \"codes\"\n\n[stage.a]\nkind = \"command\"\nargv = [\"true\"]\n";

const TINY_SEG: &str = r#"[experiment]
name = "tiny"

[stage.data]
kind = "command"
argv = ["true"]

[stage.seg]
kind = "finetune-seg"
needs = ["data"]
dataset = "data"
format = "loveda"
model = "vit-tiny"
window_size = 14
steps = 1
batch_size = 1
"#;

#[test]
fn bad_input_of_every_subcommand_exits_2_with_one_message() {
    let project = Project::new();
    let recipe = project.write("recipe.toml", RECIPE);
    let recipe = recipe.to_str().unwrap();
    project.ok(&["run", recipe, "--gpus", "none"]);
    let missing = project.path("missing.toml");
    let missing = missing.to_str().unwrap();
    std::fs::create_dir_all(project.path("recipes/models")).unwrap();
    std::fs::copy(
        repo_root().join("recipes/models/vit-tiny.toml"),
        project.path("recipes/models/vit-tiny.toml"),
    )
    .unwrap();
    let tiny = project.write("tiny.toml", TINY_SEG);
    let tiny = tiny.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["plan", missing], "missing.toml"),
        (vec!["run", missing, "--gpus", "none"], "missing.toml"),
        (vec!["run", recipe, "--gpus", "nonsense"], "nonsense"),
        (vec!["explain", recipe, "nope"], "no stage named `nope`"),
        (vec!["config", "show", missing], "missing.toml"),
        (vec!["kinds", "train"], "unknown stage kind `train`"),
        (vec!["params", "vit-huge"], "vit-huge"),
        (vec!["results", "--where", "value >"], "value"),
        (vec!["sql", "DELETE FROM stages"], "read-only"),
        (
            vec!["synth", "dota", "--out", "x", "--images", "0"],
            "images",
        ),
        (
            vec![
                "eval",
                "seg",
                "--gt",
                missing,
                "--pred",
                missing,
                "--classes",
                "2",
            ],
            "missing.toml",
        ),
        (
            vec!["plan", tiny],
            "tiny.toml:14:1: error: stage `seg`: `window_size` = 14 is larger than the 4×4 token grid",
        ),
    ];
    for (args, fragment) in cases {
        let out = project.rsfm(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("error: ").count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly_with_0() {
    let project = Project::new();
    let stages: String = (0..3000)
        .map(|i| format!("[stage.s{i}]\nkind = \"command\"\nargv = [\"true\"]\n\n"))
        .collect();
    let recipe = project.write(
        "recipe.toml",
        &format!("[experiment]\nname = \"big\"\n\n{stages}"),
    );
    for args in [
        vec!["config", "show", recipe.to_str().unwrap()],
        vec!["kinds"],
    ] {
        let mut child = project
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn paths_that_cannot_be_used_exit_2_naming_them() {
    let project = Project::new();
    let recipe = project.write("recipe.toml", RECIPE);
    let recipe = recipe.to_str().unwrap();
    let (a, b) = (project.path("loop-a"), project.path("loop-b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rsfm"))
        .arg("--results")
        .arg(&a)
        .args(["plan", recipe])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("loop of symbolic links"));

    let out = project.rsfm(&["report", recipe, "--out", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("loop-a` is a loop of symbolic links"));

    // A dataset root that is a named pipe.
    let fifo = project.path("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string and mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let with_pipe = project.write(
        "pipe.toml",
        "[experiment]\nname = \"pipe\"\n\n[dataset.d]\nroot = \"fifo\"\n\n[stage.a]\nkind = \"command\"\ndatasets = [\"d\"]\nargv = [\"true\"]\n",
    );
    let out = project.rsfm(&["plan", with_pipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a regular file or directory"));
}
