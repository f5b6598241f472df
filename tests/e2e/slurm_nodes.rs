//! Data parallel over several Slurm nodes: a two-node cluster of this machine
//! (`scripts/slurm-local.sh start DIR --nodes 2`, each slurmd in its own network namespace),
//! started by each test in its own folder and stopped when the test ends, even on a panic.
//! Needs root (namespaces), Debian's slurm-wlm and munge, and iproute2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{last_json_line, repo_root, text, worker, Project};
use crate::data_parallel::{recipe, same_losses};

/// A running two-node cluster; `Drop` stops it and checks that nothing of it is left.
struct TwoNodes {
    dir: tempfile::TempDir,
    /// What `start` recorded that it made (`netns NAME` / `link NAME` lines).
    made: String,
}

impl TwoNodes {
    fn start() -> TwoNodes {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the multi-node Slurm tests make network namespaces: run them as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = slurm_local(&["start", dir.path().to_str().unwrap(), "--nodes", "2"]);
        assert!(
            text(&out.stdout).contains("export SLURM_CONF="),
            "{}",
            text(&out.stdout)
        );
        let made = std::fs::read_to_string(dir.path().join("made")).unwrap();
        TwoNodes { dir, made }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm client command against this cluster; its stdout.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `rsfm run RECIPE --backend slurm --json` in `project`, required to succeed; its summary.
    fn run(&self, project: &Project, recipe: &Path) -> serde_json::Value {
        let out = project
            .command(&[
                "run",
                recipe.to_str().unwrap(),
                "--backend",
                "slurm",
                "--json",
            ])
            .env("SLURM_CONF", self.conf())
            .env("RSFM_WORKER", worker())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        last_json_line(&text(&out.stdout))
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        let out = Command::new(script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        if std::thread::panicking() {
            return;
        }
        assert!(out.status.success(), "{}", text(&out.stderr));
        let namespaces = text(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        );
        let links = text(
            &Command::new("ip")
                .args(["-o", "link"])
                .output()
                .unwrap()
                .stdout,
        );
        for line in self.made.lines() {
            let (kind, name) = line.split_once(' ').unwrap();
            let left = match kind {
                "netns" => namespaces
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                _ => links.contains(&format!(" {name}:")) || links.contains(&format!(" {name}@")),
            };
            assert!(!left, "`stop` left {kind} {name}");
        }
    }
}

fn script() -> PathBuf {
    repo_root().join("scripts/slurm-local.sh")
}

/// `scripts/slurm-local.sh ARGS`, required to succeed.
fn slurm_local(args: &[&str]) -> Output {
    let out = Command::new(script()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`scripts/slurm-local.sh {}` failed (it needs root, slurm-wlm, munge and iproute2):\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A project with the `vit-tiny` preset, fast Slurm polling, and the data-parallel MAE recipe
/// with `processes` ranks on each of `nodes` nodes and a global batch of 4; the recipe's path.
fn mae_project(nodes: u32, processes: u32) -> (Project, PathBuf) {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    project.write(
        "rsfm.toml",
        "[slurm]\npoll_interval = \"0.3s\"\nsubmit_rate = 50\n",
    );
    let mut text = recipe(processes, 4);
    if nodes > 1 {
        text = text.replace(
            &format!("processes = {processes}\n"),
            &format!("processes = {processes}\nnodes = {nodes}\n"),
        );
    }
    let recipe = project.write("mae.toml", &text);
    (project, recipe)
}

/// The pretrain stage's Slurm job id.
fn job_id(project: &Project, key: &str) -> String {
    let path = project
        .results()
        .join("work")
        .join(key)
        .join("slurm-job.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["job_id"].to_string()
}

#[test]
fn ranks_on_two_nodes_train_like_one_process_and_the_cluster_leaves_nothing_behind() {
    let cluster = TwoNodes::start();
    let nodes = cluster.client("sinfo", &["-h", "-N", "-o", "%N %T"]);
    assert_eq!(nodes, "n1 idle\nn2 idle\n");

    // One process, the same global batch, through the local executor.
    let (baseline, baseline_recipe) = mae_project(1, 1);
    let out = baseline
        .command(&[
            "run",
            baseline_recipe.to_str().unwrap(),
            "--gpus",
            "none",
            "--json",
        ])
        .env("RSFM_WORKER", worker())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = baseline.stage_key(&baseline_recipe, "pretrain");

    for (processes, ranks, cpus) in [(1, 2, 2), (2, 4, 4)] {
        let layout = format!("2 nodes × {processes}");
        let (project, mae) = mae_project(2, processes);
        // `nodes` and `processes` are resources: the key is the one-process stage's.
        assert_eq!(project.stage_key(&mae, "pretrain"), key, "{layout}");
        let first = cluster.run(&project, &mae);
        assert_eq!(first["executed"], 2, "{layout}: {first}");

        // One job on both nodes, one task per rank, all in one process group.
        let job = job_id(&project, &key);
        let listed = cluster.client(
            "squeue",
            &["-h", "-t", "all", "-o", "%T|%D|%N|%C", "-j", &job],
        );
        assert_eq!(
            listed.trim(),
            format!("COMPLETED|2|n[1-2]|{cpus}"),
            "{layout}: state|nodes|node list|CPUs of job {job}"
        );
        let log =
            std::fs::read_to_string(project.results().join("work").join(&key).join("stage.log"))
                .unwrap();
        assert!(
            log.contains(&format!("data parallel over {ranks} processes")),
            "{layout}:\n{log}"
        );
        same_losses(
            &project,
            &format!("on {layout}"),
            &baseline,
            "in one process",
        );

        let again = cluster.run(&project, &mae);
        assert_eq!(
            (again["executed"].as_u64(), again["cached"].as_u64()),
            (Some(0), Some(2)),
            "{layout}: {again}"
        );
    }
}

#[test]
fn the_local_backend_refuses_a_multi_node_stage_naming_its_line() {
    let (project, mae) = mae_project(2, 1);
    let line = std::fs::read_to_string(&mae)
        .unwrap()
        .lines()
        .position(|l| l == "nodes = 2")
        .unwrap()
        + 1;
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["run", mae.to_str().unwrap(), "--gpus", "none"];
        args.extend_from_slice(extra);
        let out = project.rsfm(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{}:{line}:1: ", mae.display())),
            "names `nodes = 2`'s line: {stderr}"
        );
        assert!(stderr.contains("--backend slurm"), "{stderr}");
    }
    assert!(!project.results().join("work").exists());
}

/// Progress steps in a log, in order.
fn progress_steps(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("\"event\":\"progress\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .collect()
}

/// Waits until `condition` holds (at most `seconds`).
fn wait_until(what: &str, seconds: u64, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed().as_secs() < seconds,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_failed_node_fails_or_requeues_the_job_and_it_resumes_from_its_checkpoint() {
    let cluster = TwoNodes::start();
    let (project, mae) = mae_project(2, 1);
    let long = std::fs::read_to_string(&mae)
        .unwrap()
        .replace("steps = 8\n", "steps = 1500\ncheckpoint_every = 100\n");
    std::fs::write(&mae, long).unwrap();
    let key = project.stage_key(&mae, "pretrain");
    let log_path = project.results().join("work").join(&key).join("stage.log");
    let run = project
        .command(&["run", mae.to_str().unwrap(), "--backend", "slurm", "--json"])
        .env("SLURM_CONF", cluster.conf())
        .env("RSFM_WORKER", worker())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until("step 150", 180, || {
        progress_steps(&log()).last().is_some_and(|s| *s >= 150)
    });

    // Node n2 fails: its slurmd, the job step it started and the rank in it die at once.
    let n2 = cluster
        .made
        .lines()
        .filter_map(|l| l.strip_prefix("netns "))
        .find(|name| name.ends_with("-n2"))
        .unwrap()
        .to_string();
    let pids = text(
        &Command::new("ip")
            .args(["netns", "pids", &n2])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!pids.trim().is_empty(), "nothing runs in {n2}");
    for pid in pids.split_whitespace() {
        // SAFETY: killing processes of the test's own cluster node.
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
    }
    let job = job_id(&project, &key);
    let state = || {
        cluster
            .client("squeue", &["-h", "-t", "all", "-o", "%T", "-j", &job])
            .trim()
            .to_string()
    };
    // Slurm requeues the job once it declares n2 down (SlurmdTimeout); or, when the batch step
    // on n1 ends first (rank 0's all-reduce fails), the job ends FAILED and so does the stage.
    let mut run = Some(run);
    let mut ended = None;
    wait_until("the job to be requeued or the run to end", 180, || {
        if let Some(status) = run.as_mut().unwrap().try_wait().unwrap() {
            ended = Some(status);
            return true;
        }
        state() == "PENDING"
    });
    wait_until("the node failure in the stage log", 60, || {
        log().contains("DUE TO NODE FAILURE") || log().contains("Node failure on n2")
    });
    let status = project.sql("SELECT status FROM stages WHERE name = 'pretrain'");
    let expected = if ended.is_some() { "failed" } else { "running" };
    assert_eq!(
        status[0]["status"], expected,
        "never a success from that job"
    );

    // The node comes back; the job (requeued, or the stage run again) goes on from the last
    // checkpoint.
    slurm_local(&[
        "start",
        cluster.dir.path().to_str().unwrap(),
        "--nodes",
        "2",
    ]);
    let out = run.take().unwrap().wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    let out = match ended {
        None => {
            assert!(out.status.success(), "{stderr}");
            assert!(
                stderr.contains(&format!("Slurm requeued job {job}")),
                "{stderr}"
            );
            out
        }
        Some(_) => {
            assert!(!out.status.success(), "{stderr}");
            assert!(stderr.contains(&format!("Slurm job {job}")), "{stderr}");
            let again = project
                .command(&["run", mae.to_str().unwrap(), "--backend", "slurm", "--json"])
                .env("SLURM_CONF", cluster.conf())
                .env("RSFM_WORKER", worker())
                .output()
                .unwrap();
            assert!(again.status.success(), "{}", text(&again.stderr));
            again
        }
    };
    let log = log();
    let resumed: u64 = log
        .split("resuming from step ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the requeued job did not resume:\n{log}"));
    assert!(
        resumed >= 100 && resumed.is_multiple_of(100),
        "resumed from {resumed}"
    );
    assert_eq!(progress_steps(&log).last(), Some(&1500));
    assert!(last_json_line(&text(&out.stdout))["executed"].as_u64() >= Some(1));
}
