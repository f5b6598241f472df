//! `kill -9` and Ctrl-C in the middle of a stage: no cache entry, a consistent database, and the
//! next run finishes the work, resuming from the stage's work dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::Project;

/// One `command` stage running [`COUNT`].
pub(crate) const RECIPE: &str = r#"
[experiment]
name = "interrupts"

[stage.count]
kind = "command"
argv = ["sh", "count.sh", "{out}"]
deps = ["count.sh"]
"#;

/// Ten steps of 0.3 s, checkpointing the step in the work dir (written to a side file and
/// renamed, so a kill mid-write never leaves it empty) and resuming from it.
pub(crate) const COUNT: &str = r#"
step=$(cat "$RSFM_WORK_DIR/step" 2>/dev/null || echo 0)
echo "start $step" >> "$RSFM_WORK_DIR/history"
while [ "$step" -lt 10 ]; do
  sleep 0.3
  step=$((step + 1))
  echo "$step" > "$RSFM_WORK_DIR/step.new" && mv "$RSFM_WORK_DIR/step.new" "$RSFM_WORK_DIR/step"
  echo "{\"event\":\"progress\",\"step\":$step,\"total\":10}"
done
echo "{\"steps\": $step}" > "$1/metrics.json"
"#;

fn setup() -> (Project, PathBuf, PathBuf) {
    let (project, recipe) = Project::with_recipe("count.toml", RECIPE, &[("count.sh", COUNT)]);
    let key = project.stage_key(&recipe, "count");
    let work = project.results().join("work").join(&key);
    (project, recipe, work)
}

/// The step each run of [`COUNT`] started from, in order.
pub(crate) fn resume_starts(work: &Path) -> Vec<u32> {
    let history = std::fs::read_to_string(work.join("history")).unwrap();
    history
        .lines()
        .map(|l| l.trim_start_matches("start ").parse().unwrap())
        .collect()
}

fn wait_for_step(work: &Path, at_least: u32) {
    let start = Instant::now();
    loop {
        let step = std::fs::read_to_string(work.join("step"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if step.is_some_and(|s| s >= at_least) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the stage never reached step {at_least}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cache_entries(project: &Project) -> usize {
    let listed: serde_json::Value =
        serde_json::from_str(&project.ok(&["cache", "ls", "--json"])).unwrap();
    listed.as_array().unwrap().len()
}

#[test]
fn kill_9_mid_stage_leaves_no_entry_and_the_next_run_resumes() {
    let (project, recipe, work) = setup();
    let mut run = project
        .command(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
        .spawn()
        .unwrap();
    wait_for_step(&work, 3);
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();

    assert_eq!(cache_entries(&project), 0);
    let integrity = project.sql("PRAGMA integrity_check");
    assert_eq!(integrity[0]["integrity_check"], "ok");
    let rows = project.sql("SELECT status FROM stages");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["status"], "running",
        "the killed run could not record an end"
    );

    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 1, "{summary}");
    assert_eq!(cache_entries(&project), 1);
    let starts = resume_starts(&work);
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts[0], 0);
    assert!(
        starts[1] >= 3,
        "the second run resumed from step {}",
        starts[1]
    );
    let rows = project.sql("SELECT status FROM stage_runs ORDER BY rowid");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"succeeded"), "{statuses:?}");
    let metrics = project.sql("SELECT value FROM metrics WHERE name = 'steps'");
    assert_eq!(metrics[0]["value"].as_f64(), Some(10.0));
    // Nothing half-built is left behind.
    let leftovers = std::fs::read_dir(project.results().join("tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn ctrl_c_marks_the_stage_interrupted_and_caches_nothing() {
    let (project, recipe, work) = setup();
    let run = project
        .command(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
        .spawn()
        .unwrap();
    wait_for_step(&work, 2);
    // SAFETY: sending SIGINT to the child we spawned.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(cache_entries(&project), 0);
    let rows = project.sql("SELECT status FROM stages");
    assert_eq!(rows[0]["status"], "interrupted");
}

/// [`COUNT`] that records its pid and, on SIGTERM, stops at its checkpoint with exit status 3
/// (the worker protocol's "stopped at a checkpoint").
const COUNT_STOPPABLE: &str = r#"
echo $$ > "$RSFM_WORK_DIR/pid"
trap 'exit 3' TERM
"#;

#[test]
fn a_stage_stopped_at_a_checkpoint_from_outside_resumes_without_spending_a_retry() {
    let script = format!("{COUNT_STOPPABLE}{COUNT}");
    let recipe = RECIPE.replace("[stage.count]", "[stage.count]\nretries = 0");
    let (project, recipe) =
        Project::with_recipe("count.toml", &recipe, &[("count.sh", script.as_str())]);
    let key = project.stage_key(&recipe, "count");
    let work = project.results().join("work").join(&key);
    let run = project
        .command(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_step(&work, 3);
    let pid: i32 = std::fs::read_to_string(work.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the stage process the run started (not the run itself), as a
    // preemption or an operator would.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "interrupts/count: stopped at a checkpoint; resuming from it (1/20, no retry spent)"
        ),
        "{stderr}"
    );
    let starts = resume_starts(&work);
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts[1] >= 3, "resumed from step {}", starts[1]);
    let runs = project.sql("SELECT status FROM stage_runs");
    assert_eq!(runs.len(), 1, "one attempt: {runs:?}");
    assert_eq!(runs[0]["status"], "succeeded");
    let stages = project.sql("SELECT attempts FROM stages");
    assert_eq!(stages[0]["attempts"], 1);
    let metrics = project.sql("SELECT value FROM metrics WHERE name = 'steps'");
    assert_eq!(metrics[0]["value"].as_f64(), Some(10.0));
    let log = std::fs::read_to_string(work.join("stage.log")).unwrap();
    assert!(
        log.contains("rsfm: interrupts/count: stopped at a checkpoint"),
        "{log}"
    );
}
