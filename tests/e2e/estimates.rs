//! `rsfm plan --estimate` needs no worker: without one, it still estimates, says the keys are
//! provisional, states that GPU-hours are summed over a stage's GPUs beside the wall-clock
//! hours on them, and gives memory in GiB only; `plan` without `--estimate` still refuses.

use std::process::Output;

use crate::common::{repo_root, text, Project};

/// `rsfm plan recipes/paper ARGS...` with the worker at a path that does not exist and the
/// datasets at absent folders.
fn plan_without_worker(project: &Project, args: &[&str]) -> Output {
    let paper = repo_root().join("recipes/paper");
    let mut full = vec!["plan", paper.to_str().unwrap()];
    full.extend_from_slice(args);
    let mut command = project.command(&full);
    command.env("RSFM_WORKER", project.path("no-such-dir/rsfm-worker"));
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("RSFM_DATA_")) {
        command.env_remove(name);
    }
    for name in ["MILLIONAID", "DOTA", "DIOR_R", "POTSDAM", "LOVEDA"] {
        command.env(
            format!("RSFM_DATA_{name}"),
            project.path("no-data").join(name),
        );
    }
    command.output().expect("rsfm runs")
}

/// The number in column `column` (0-based, whitespace-separated) of the table row of `stage`.
fn cell(table: &str, stage: &str, column: usize) -> f64 {
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no row {stage} in\n{table}"));
    let cell = row.split_whitespace().nth(column).expect("a cell");
    cell.trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("{cell} is not a number in {row}"))
}

#[test]
fn the_paper_estimate_runs_without_a_worker_and_states_its_units() {
    let project = Project::new();
    let out = plan_without_worker(&project, &["--estimate"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    assert!(
        stdout.contains("no rsfm-worker found at") && stdout.contains("keys of worker stages"),
        "{stdout}"
    );
    assert!(stdout.contains("are provisional"), "{stdout}");
    assert!(
        stdout.contains("GPU-hours are summed over a stage's GPUs"),
        "{stdout}"
    );
    assert!(stdout.contains("wall-clock hours are GPU-hours / GPUs"));
    assert!(
        stdout.contains("GPU-hours on h100 summed over GPUs"),
        "{stdout}"
    );
    assert!(stdout.contains("wall-clock hours if the stages ran one after another"));
    // GiB only: no decimal gigabytes anywhere.
    assert!(stdout.contains("79.6 GiB"), "{stdout}");
    assert!(
        !stdout.contains(" GB") && !stdout.contains("GB)") && !stdout.contains("mem GB"),
        "{stdout}"
    );
    // Columns: stage, params, FLOPs, heads, GPUs, GPU-hours, wall h, mem GiB, ckpt GiB.
    let table = &stdout[stdout.find("\nstage ").expect("the estimate table")..];
    let stage = "paper/det-dota@vit-b-1.0";
    let (gpus, gpu_hours, wall) = (
        cell(table, stage, 4),
        cell(table, stage, 5),
        cell(table, stage, 6),
    );
    assert_eq!(gpus, 8.0);
    assert!(gpu_hours > 0.0);
    // Printed to 0.1: the wall-clock hours are the GPU-hours over the 8 GPUs.
    assert!(
        (wall - gpu_hours / gpus).abs() <= 0.1,
        "{wall} vs {gpu_hours}"
    );
    // The heads are counted: a ViT-B detector at 1024 px spends a share outside its backbone.
    assert!(cell(table, stage, 3) >= 10.0, "{table}");

    // The JSON says which worker is missing and gives both hours per stage.
    let json = plan_without_worker(&project, &["--estimate", "--json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    assert!(plan["missing_worker"]
        .as_str()
        .is_some_and(|p| p.ends_with("no-such-dir/rsfm-worker")));
    let estimate = &plan["estimate"];
    let det = estimate["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .expect("the DOTA ViT-B stage");
    let hours = det["gpu_hours"].as_f64().unwrap();
    assert!((det["wall_hours"].as_f64().unwrap() - hours / 8.0).abs() < 1e-9);
    assert!(det["head_flops"].as_f64().unwrap() > 0.0);
    assert!((estimate["gpu_memory_gib"].as_f64().unwrap() - 81_559.0 / 1024.0).abs() < 1e-9);

    // Without --estimate the keys matter: a missing worker is still refused (exit 2).
    let keys = plan_without_worker(&project, &[]);
    let stderr = text(&keys.stderr);
    assert_eq!(keys.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("worker stages' keys hold its hash"),
        "{stderr}"
    );
}
