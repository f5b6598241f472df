//! The bad-input corpus under `tests/bad/`: each case is a folder with the files it needs and a
//! `case.toml` sidecar (`args`, `exit`, `stderr_contains`, optionally `errors`: the number of
//! `error:` lines). Each case runs `rsfm --results results ARGS` in a copy of its folder and
//! must exit with its code and name what it says (file, line, key) on stderr; no case may panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::common::{repo_root, text};

/// The sidecar of one case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    /// Arguments after `rsfm --results results`.
    args: Vec<String>,
    /// Expected exit code.
    exit: i32,
    /// Fragments stderr must contain (file:line:col, key, hint).
    pub(crate) stderr_contains: Vec<String>,
    /// How many `error:` lines stderr must hold, when the case says (each problem once).
    #[serde(default)]
    errors: Option<usize>,
}

impl Case {
    /// The sidecar `case.toml` of the case folder `dir`.
    pub(crate) fn read(dir: &Path) -> Case {
        let sidecar = std::fs::read_to_string(dir.join("case.toml")).unwrap();
        toml::from_str(&sidecar).unwrap_or_else(|e| panic!("{}: bad sidecar: {e}", dir.display()))
    }
}

/// Fewest cases the corpus must hold.
const MIN_CASES: usize = 40;

/// Copies the folder `from` (a case) to `to`, subfolders included.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/bad"))
        .expect("tests/bad exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// What is wrong with one case's outcome, if anything.
fn check(dir: &Path) -> Option<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let case = Case::read(dir);
    let work = tempfile::tempdir().unwrap();
    copy_tree(dir, work.path());
    let out = Command::new(env!("CARGO_BIN_EXE_rsfm"))
        .arg("--results")
        .arg("results")
        .args(&case.args)
        .current_dir(work.path())
        .env_remove("RSFM_RESULTS")
        .env("RSFM_WORKER", crate::common::worker())
        .output()
        .expect("rsfm runs");
    let stderr = text(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(case.exit) {
        problems.push(format!(
            "exit {:?}, expected {}",
            out.status.code(),
            case.exit
        ));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".to_string());
    }
    for fragment in &case.stderr_contains {
        if !stderr.contains(fragment.as_str()) {
            problems.push(format!("stderr lacks `{fragment}`"));
        }
    }
    if let Some(expected) = case.errors {
        let found = stderr.matches(" error: ").count();
        if found != expected {
            problems.push(format!("{found} `error:` lines, expected {expected}"));
        }
    }
    (!problems.is_empty()).then(|| format!("{name}: {}\n  stderr: {stderr}", problems.join("; ")))
}

#[test]
fn every_bad_input_exits_with_its_code_and_names_file_line_and_key() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= MIN_CASES,
        "tests/bad holds {} cases, at least {MIN_CASES} expected",
        dirs.len()
    );
    let failures: Vec<String> = dirs.iter().filter_map(|d| check(d)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
