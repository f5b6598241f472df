//! `rsfm run --backend slurm --detach` on the shared local cluster of `slurm.rs`: every pending
//! stage submitted at once with its dependencies, `rsfm status RUN` ingesting the finished jobs,
//! a failed first stage's dependents skipped with the reason, nothing submitted again.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{last_json_line, text, Project};
use crate::slurm::{progress_steps, project, rsfm_slurm, slurm_client, wait_until, worker_project};

/// A 3-stage chain: each stage adds its number to the one before and writes `n`.
const CHAIN: &str = r#"
[experiment]
name = "chain"

[stage.a]
kind = "command"
argv = ["sh", "step.sh", "3", "1", "none", "{out}"]
deps = ["step.sh"]

[stage.b]
kind = "command"
needs = ["a"]
argv = ["sh", "step.sh", "0", "2", "{input.a}", "{out}"]
deps = ["step.sh"]

[stage.c]
kind = "command"
needs = ["b"]
argv = ["sh", "step.sh", "0", "3", "{input.b}", "{out}"]
deps = ["step.sh"]
"#;

const STEP: &str = r#"sleep "$1"
prev=0
if [ "$3" != none ]; then prev=$(cat "$3/n"); fi
n=$((prev + $2))
echo "$n" > "$4/n"
printf '{"n": %s}\n' "$n" > "$4/metrics.json"
"#;

/// A project with the chain recipe; `first` replaces stage a's script (`step.sh` or `fail.sh`).
fn chain_project(first: &str) -> (Project, std::path::PathBuf) {
    let project = project();
    project.write("step.sh", STEP);
    project.write("fail.sh", "echo 'no luck' >&2\nexit 1\n");
    let recipe = CHAIN.replacen(
        "argv = [\"sh\", \"step.sh\", \"3\"",
        &format!("argv = [\"sh\", \"{first}\", \"3\""),
        1,
    );
    let path = project.write("chain.toml", &recipe);
    (project, path)
}

/// `rsfm run RECIPE --backend slurm --detach --json`: its summary and how long it took.
fn detach(project: &Project, recipe: &Path) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let out = rsfm_slurm(
        project,
        &[
            "run",
            recipe.to_str().unwrap(),
            "--backend",
            "slurm",
            "--detach",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (last_json_line(&text(&out.stdout)), took)
}

/// `rsfm status RUN --json`: each stage's name and state, and its reason.
fn status(project: &Project, run: &str) -> Vec<(String, String, String)> {
    let out = rsfm_slurm(project, &["status", run, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    view["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The job ids of a detached summary, in submission order.
fn job_ids(summary: &serde_json::Value) -> Vec<u64> {
    summary["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j[1].as_u64().unwrap())
        .collect()
}

/// Waits until no stage of `run` is still pending or running; the final states.
fn settled(project: &Project, run: &str) -> Vec<(String, String, String)> {
    let mut states = Vec::new();
    wait_until("the detached run's jobs to be ingested", || {
        states = status(project, run);
        states.iter().all(|(_, state, _)| {
            ["succeeded", "failed", "skipped", "interrupted"].contains(&state.as_str())
        })
    });
    states
}

#[test]
fn a_detached_chain_is_queued_at_once_and_status_ingests_it() {
    let (project, recipe) = chain_project("step.sh");
    let (summary, took) = detach(&project, &recipe);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let ids = job_ids(&summary);
    assert_eq!(ids.len(), 3, "{summary}");
    let run = summary["run"].as_str().unwrap().to_string();
    // Stage a sleeps 3 s: b and c wait for the jobs of the stages they need.
    let listed = slurm_client("squeue", &["-h", "-t", "all", "-o", "%i|%E"]);
    let dependency = |id: u64| {
        listed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{id}|")))
            .unwrap_or_else(|| panic!("job {id} not in squeue:\n{listed}"))
            .to_string()
    };
    assert!(
        dependency(ids[1]).starts_with(&format!("afterok:{}", ids[0])),
        "{listed}"
    );
    assert!(
        dependency(ids[2]).starts_with(&format!("afterok:{}", ids[1])),
        "{listed}"
    );

    let states = settled(&project, &run);
    assert!(
        states.iter().all(|(_, s, _)| s == "succeeded"),
        "{states:?}"
    );
    for (stage, n) in [("a", 1.0), ("b", 3.0), ("c", 6.0)] {
        assert_eq!(project.metric(stage, "n"), n);
    }
    let results = project.ok(&["results", "--experiment", "chain", "--format", "json"]);
    assert!(results.contains("\"n\""), "{results}");

    // Everything is cached now: a second detached run submits nothing.
    let (again, _) = detach(&project, &recipe);
    assert!(job_ids(&again).is_empty(), "{again}");
    assert_eq!(again["cached"], 3, "{again}");
}

#[test]
fn a_failed_first_stage_leaves_its_dependents_skipped_with_the_reason() {
    let (project, recipe) = chain_project("fail.sh");
    let (summary, _) = detach(&project, &recipe);
    let run = summary["run"].as_str().unwrap().to_string();
    let states = settled(&project, &run);
    assert_eq!(states[0].1, "failed", "{states:?}");
    assert!(states[0].2.contains("FAILED"), "{states:?}");
    assert_eq!(states[1].1, "skipped", "{states:?}");
    assert!(
        states[1].2.starts_with("needs chain/a, which failed"),
        "{states:?}"
    );
    assert_eq!(states[2].1, "skipped", "{states:?}");
    assert!(
        states[2].2.starts_with("needs chain/b, which was skipped"),
        "{states:?}"
    );
    let rows = project.sql("SELECT status, stderr_tail FROM stages WHERE name = 'a'");
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert!(
        rows[0]["stderr_tail"].as_str().unwrap().contains("no luck"),
        "{rows:?}"
    );
}

#[test]
fn a_requeued_detached_training_job_continues_the_same_record_and_curve() {
    let (project, recipe) = worker_project(project());
    let (summary, _) = detach(&project, &recipe);
    let ids = job_ids(&summary);
    assert_eq!(ids.len(), 2, "{summary}");
    let run = summary["run"].as_str().unwrap().to_string();
    let key = project.stage_key(&recipe, "pretrain");
    let log_path = project.results().join("work").join(&key).join("stage.log");
    wait_until("the worker's fifth step", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        progress_steps(&log).last().is_some_and(|s| *s >= 5)
    });
    slurm_client("scontrol", &["requeue", &ids[1].to_string()]);
    let states = settled(&project, &run);
    assert!(
        states.iter().all(|(_, s, _)| s == "succeeded"),
        "{states:?}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("resuming from step "),
        "the requeued job did not resume:\n{log}"
    );

    // One record, its attempt counted once per start of the job, one curve over both starts.
    let row = &project.sql(&format!(
        "SELECT attempts, (SELECT COUNT(*) FROM stage_runs WHERE stage_key = '{key}') AS runs \
         FROM stages WHERE key = '{key}'"
    ))[0];
    assert_eq!(row["attempts"], 2, "{row}");
    assert_eq!(row["runs"], 1, "{row}");
    let steps: Vec<i64> = project
        .sql(&format!(
            "SELECT step FROM metrics WHERE stage_key = '{key}' AND name = 'loss' ORDER BY step"
        ))
        .iter()
        .map(|r| r["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, (1..=240).collect::<Vec<i64>>());
}

#[test]
fn a_detached_job_stopped_at_a_checkpoint_is_requeued_and_resumes() {
    let project = project();
    // Exits 3 (stopped at a checkpoint) on its first start, finishes on the next.
    let recipe = project.write(
        "resume.toml",
        "[experiment]\nname = \"detach-resume\"\n\n[stage.twice]\nkind = \"command\"\n\
         argv = [\"sh\", \"-c\", \"if [ -e \\\"$RSFM_WORK_DIR/ckpt\\\" ]; then echo '{{\\\"resumed\\\": 1}}' > \\\"$1/metrics.json\\\"; else touch \\\"$RSFM_WORK_DIR/ckpt\\\"; exit 3; fi\", \"sh\", \"{out}\"]\n",
    );
    let (summary, _) = detach(&project, &recipe);
    let ids = job_ids(&summary);
    let run = summary["run"].as_str().unwrap().to_string();
    let states = settled(&project, &run);
    assert_eq!(states[0].1, "succeeded", "{states:?}");
    assert_eq!(project.metric("twice", "resumed"), 1.0);
    let attempts = project.sql("SELECT attempts FROM stages WHERE name = 'twice'");
    assert_eq!(attempts[0]["attempts"], 2, "{attempts:?}");
    // One job, put back in the queue by itself.
    let state = slurm_client(
        "squeue",
        &["-h", "-t", "all", "-o", "%T", "-j", &ids[0].to_string()],
    );
    assert_eq!(state.trim(), "COMPLETED");
}
