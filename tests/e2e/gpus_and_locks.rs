//! GPU leases through CUDA_VISIBLE_DEVICES, and per-key locks between concurrent runs.

use std::time::{Duration, Instant};

use crate::common::Project;

const GPU_RECIPE: &str = r#"
[experiment]
name = "leases"

[matrix]
part = [1, 2, 3]

[stage.use_gpu]
kind = "command"
gpus = 1
argv = ["sh", "-c", "echo \"$CUDA_VISIBLE_DEVICES $(date +%s.%N)\" > \"$0/start\"; sleep 1; date +%s.%N > \"$0/end\"", "{out}", "{part}"]
"#;

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn parallel_stages_lease_different_devices_and_a_third_waits() {
    let project = Project::new();
    let recipe = project.write("leases.toml", GPU_RECIPE);
    let recipe_arg = recipe.to_str().unwrap();
    let out = project.rsfm(&["run", recipe_arg, "--gpus", "0,1", "--jobs", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for a GPU lease"), "{stderr}");
    let plan = project.plan(&recipe);
    let mut runs: Vec<(String, f64, f64)> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["key"].as_str().unwrap();
            let entry = project.entry_dir(key);
            let start = read(entry.join("start"));
            let (device, at) = start.trim().split_once(' ').unwrap();
            let end: f64 = read(entry.join("end")).trim().parse().unwrap();
            (device.to_string(), at.parse().unwrap(), end)
        })
        .collect();
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    // The first two ran at once on different devices.
    assert_ne!(runs[0].0, runs[1].0);
    assert!(
        runs[1].1 < runs[0].2,
        "the first two stages overlapped: {runs:?}"
    );
    // The third started only after one of them ended, on the device it released.
    let first_end = runs[0].2.min(runs[1].2);
    assert!(
        runs[2].1 >= first_end,
        "the third stage waited for a lease: {runs:?}"
    );
    assert!(["0", "1"].contains(&runs[2].0.as_str()));
}

const SLOW_RECIPE: &str = r#"
[experiment]
name = "locks"

[stage.slow]
kind = "command"
argv = ["sh", "-c", "echo run >> ../runs.log; sleep 2; echo '{{\"done\": 1}}' > \"$0/metrics.json\"", "{out}"]
"#;

#[test]
fn two_runs_never_run_one_key_twice_and_a_dead_runs_lock_is_broken() {
    let project = Project::new();
    let recipe = project.write("work/locks.toml", SLOW_RECIPE);
    let recipe_arg = recipe.to_str().unwrap();

    // A lock file left by a run that is gone does not block.
    let plan = project.plan(&recipe);
    let key = plan["stages"][0]["key"].as_str().unwrap().to_string();
    project.write(
        &format!("results/locks/{key}.lock"),
        r#"{"pid": 999999, "host": "elsewhere", "boot_id": "old"}"#,
    );

    let started = Instant::now();
    let first = project
        .command(&["run", recipe_arg, "--gpus", "none", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let second = project
        .command(&["run", recipe_arg, "--gpus", "none", "--json"])
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success() && second.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let runs = std::fs::read_to_string(project.path("runs.log")).unwrap();
    assert_eq!(runs.lines().count(), 1, "the key ran once");
    let summaries = [
        crate::common::last_json_line(&String::from_utf8_lossy(&first.stdout)),
        crate::common::last_json_line(&String::from_utf8_lossy(&second.stdout)),
    ];
    let executed: u64 = summaries
        .iter()
        .map(|s| s["executed"].as_u64().unwrap())
        .sum();
    let cached: u64 = summaries
        .iter()
        .map(|s| s["cached"].as_u64().unwrap())
        .sum();
    assert_eq!((executed, cached), (1, 1), "{summaries:?}");
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("waiting for"),
        "the second run waited for the first's lock"
    );
}

#[test]
fn cpu_stages_get_their_share_of_the_cores_as_omp_num_threads() {
    let project = Project::new();
    let recipe = project.write(
        "threads.toml",
        r#"
[experiment]
name = "threads"

[stage.threads]
kind = "command"
argv = ["sh", "-c", "echo $OMP_NUM_THREADS > \"$0/threads\"", "{out}"]
"#,
    );
    let recipe_arg = recipe.to_str().unwrap();
    let out = project
        .command(&["run", recipe_arg, "--gpus", "none", "--jobs", "2", "--json"])
        .env_remove("OMP_NUM_THREADS")
        .output()
        .expect("rsfm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = project.plan(&recipe);
    let key = plan["stages"][0]["key"].as_str().unwrap();
    let entry = project.entry_dir(key);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let expected = (cores / 2).max(1);
    assert_eq!(read(entry.join("threads")).trim(), expected.to_string());
}
