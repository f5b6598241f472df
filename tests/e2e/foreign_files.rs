//! Nothing rsfm did not make is ever removed: a `--results` folder holding other files is
//! refused before anything is written, foreign files inside an rsfm results folder survive
//! `run` and `cache gc`, and a gc beside a live run removes nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{last_json_line, text, Project};

const RECIPE: &str = r#"
[experiment]
name = "foreign"

[stage.first]
kind = "command"
argv = ["sh", "-c", "echo 1 > \"$1/out.txt\"", "sh", "{out}"]

[stage.second]
kind = "command"
needs = ["first"]
argv = ["sh", "-c", "while [ ! -e \"$2\" ]; do sleep 0.1; done; cat \"$1/out.txt\" > \"$3/out.txt\"", "sh", "{input.first}", "GO", "{out}"]
"#;

/// The recipe with the path the second stage waits for before it reads its input.
fn recipe(project: &Project) -> std::path::PathBuf {
    let go = project.path("go");
    project.write("foreign.toml", &RECIPE.replace("GO", go.to_str().unwrap()))
}

/// `rsfm --results RESULTS ARGS` in the project's folder.
fn rsfm(project: &Project, results: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rsfm"));
    command
        .arg("--results")
        .arg(results)
        .args(args)
        .current_dir(project.path(""))
        .env_remove("RSFM_RESULTS");
    command
}

#[test]
fn a_results_folder_holding_other_files_is_refused_and_left_as_it_was() {
    let project = Project::new();
    let recipe = recipe(&project);
    std::fs::write(project.path("go"), "").unwrap();
    let folder = project.path("my-project");
    std::fs::create_dir_all(folder.join("tmp")).unwrap();
    std::fs::write(folder.join("tmp/notes.txt"), "mine").unwrap();
    std::fs::write(folder.join("Cargo.toml"), "[package]").unwrap();
    let out = rsfm(&project, &folder, &["run", recipe.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not an rsfm results folder") && stderr.contains("--results"),
        "{stderr}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Cargo.toml", "tmp"], "nothing written");
    assert_eq!(
        std::fs::read_to_string(folder.join("tmp/notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn foreign_files_in_a_results_folder_survive_run_and_gc() {
    let project = Project::new();
    let recipe = recipe(&project);
    std::fs::write(project.path("go"), "").unwrap();
    let first = project.run_json(&recipe, &[]);
    assert_eq!(first["executed"], 2, "{first}");
    let results = project.results();
    let foreign = [
        results.join("tmp/notes.txt"),
        results.join("tmp/abc.host.1.2/kept.txt"),
        results.join("cache/mine/notes.txt"),
        results.join("cache/ab/not-a-key/notes.txt"),
    ];
    for file in &foreign {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, "mine").unwrap();
    }
    let again = project.run_json(&recipe, &[]);
    assert_eq!(again["cached"], 2, "{again}");
    // A gc with a recipe that reaches nothing: both entries go, the user's files stay.
    let empty = project.write("empty.toml", "[experiment]\nname = \"empty\"\n");
    let gc = project.ok(&["cache", "gc", empty.to_str().unwrap(), "--json"]);
    let removed = last_json_line(&gc);
    assert_eq!(removed["removed"].as_array().unwrap().len(), 2, "{gc}");
    for file in &foreign {
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            "mine",
            "{}",
            file.display()
        );
    }
}

#[test]
fn a_gc_beside_a_live_run_removes_nothing() {
    let project = Project::new();
    let recipe = recipe(&project);
    let run = project
        .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first stage is committed and the second waits for its go.
    let first_key = project.stage_key(&recipe, "first");
    let entry = project.entry_dir(&first_key).join("manifest.json");
    let started = Instant::now();
    while !entry.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first stage never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let empty = project.write("empty.toml", "[experiment]\nname = \"empty\"\n");
    let gc = project
        .command(&["cache", "gc", empty.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = text(&gc.stderr);
    assert_eq!(gc.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("an `rsfm run` is using"), "{stderr}");
    assert!(entry.exists(), "the gc removed an entry the run needs");
    std::fs::write(project.path("go"), "").unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(last_json_line(&text(&out.stdout))["executed"], 2);
    // With the run over, the gc goes ahead.
    let after = project.ok(&["cache", "gc", empty.to_str().unwrap()]);
    assert!(after.contains("2 entries removed"), "{after}");
}
