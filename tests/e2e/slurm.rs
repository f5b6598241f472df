//! `rsfm run --backend slurm` against real Slurm daemons: one one-node cluster
//! (`scripts/slurm-local.sh`) started for all these tests and stopped when the test binary exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{last_json_line, repo_root, text, Project};
use crate::interrupts::{resume_starts, COUNT, RECIPE as COUNT_RECIPE};

/// The shared cluster: its folder and `slurm.conf`.
pub(crate) struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn script() -> PathBuf {
    repo_root().join("scripts/slurm-local.sh")
}

/// `scripts/slurm-local.sh ACTION DIR`, required to succeed.
fn slurm_local(action: &str, dir: &Path) -> Output {
    let out = Command::new(script())
        .args([action, dir.to_str().unwrap()])
        .output()
        .expect("bash runs scripts/slurm-local.sh");
    assert!(
        out.status.success(),
        "`scripts/slurm-local.sh {action} {}` failed; the Slurm tests need Debian's slurm-wlm and munge \
         (`apt-get install -y slurm-wlm munge`, as root):\n{}{}",
        dir.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

extern "C" fn stop_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        let _ = Command::new(script())
            .args(["stop", cluster.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&cluster.dir);
    }
}

/// Starts the shared cluster on first use.
pub(crate) fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rsfm-slurm-tests-{}", std::process::id()));
        let out = slurm_local("start", &dir);
        assert!(text(&out.stdout).contains("export SLURM_CONF="));
        // SAFETY: registering a plain function to run at process exit.
        unsafe { libc::atexit(stop_cluster) };
        Cluster {
            conf: dir.join("slurm.conf"),
            dir,
        }
    })
}

/// A project whose `rsfm.toml` polls fast, for tests.
pub(crate) fn project() -> Project {
    let project = Project::new();
    project.write(
        "rsfm.toml",
        "[slurm]\npoll_interval = \"0.3s\"\nsubmit_rate = 50\n",
    );
    project
}

/// `rsfm ... ` with the shared cluster's `SLURM_CONF`.
pub(crate) fn rsfm_slurm(project: &Project, args: &[&str]) -> Command {
    let mut command = project.command(args);
    command.env("SLURM_CONF", &cluster().conf);
    command
}

/// `rsfm run RECIPE --backend slurm --json`, required to succeed; its summary.
fn run_slurm(project: &Project, recipe: &Path) -> serde_json::Value {
    let out = rsfm_slurm(
        project,
        &[
            "run",
            recipe.to_str().unwrap(),
            "--backend",
            "slurm",
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    last_json_line(&text(&out.stdout))
}

/// A Slurm client command against the shared cluster; its stdout.
pub(crate) fn slurm_client(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SLURM_CONF", &cluster().conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn plan_keys(project: &Project, recipe: &Path) -> Vec<(String, String)> {
    let plan = project.plan(recipe);
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The Slurm job id recorded in a stage's work dir.
fn job_id(project: &Project, key: &str) -> u64 {
    let path = project
        .results()
        .join("work")
        .join(key)
        .join("slurm-job.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}", path.display());
        }))
        .unwrap();
    record["job_id"].as_u64().unwrap()
}

fn metrics(project: &Project) -> Vec<serde_json::Value> {
    // Final metrics only: curves carry throughput (items/s), which no two runs share.
    project.sql(
        "SELECT s.key, m.name, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
         WHERE m.step IS NULL ORDER BY s.key, m.name",
    )
}

/// The jobs of stage `experiment/stage` in id order, each with its `squeue` fields `format`
/// (`|`-separated); and the whole listing, for messages.
fn jobs_of(stage: &str, format: &str) -> (Vec<(u64, String)>, String) {
    let listed = slurm_client(
        "squeue",
        &["-h", "-t", "all", "-o", &format!("%i|{format}|%j")],
    );
    let mut jobs: Vec<(u64, String)> = listed
        .lines()
        .filter(|l| {
            let name = l.rsplit('|').next().unwrap_or("");
            name.starts_with(&format!("{stage}:rsfm"))
        })
        .map(|l| {
            let (id, rest) = l.split_once('|').unwrap();
            (id.parse().unwrap(), rest.to_string())
        })
        .collect();
    jobs.sort();
    (jobs, listed)
}

/// Waits for `child` to exit (at most 5 minutes).
fn wait(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("rsfm run did not end within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Waits until `condition` holds (at most 2 minutes).
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_design_example_runs_as_slurm_jobs_like_it_runs_locally() {
    let project = project();
    let recipe = repo_root().join("recipes/examples/design/example.toml");
    let summary = run_slurm(&project, &recipe);
    assert_eq!(summary["executed"], 4, "{summary}");

    // Every stage ran as a Slurm job, and Slurm saw each one complete.
    let keys = plan_keys(&project, &recipe);
    let ids: Vec<String> = keys
        .iter()
        .map(|(_, key)| job_id(&project, key).to_string())
        .collect();
    let listed = slurm_client(
        "squeue",
        &["-h", "-t", "all", "-o", "%i|%j|%T", "-j", &ids.join(",")],
    );
    for ((name, _), id) in keys.iter().zip(&ids) {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{id}|")))
            .unwrap_or_else(|| panic!("squeue does not list job {id}: {listed}"));
        assert!(line.ends_with("|COMPLETED"), "{line}");
        // The stage's name comes first, so a narrow `squeue` column still shows it.
        assert!(line.contains(&format!("|example/{name}:rsfm")), "{line}");
    }
    // Stage times are the jobs' own run times (Slurm's whole seconds), not the wall time of the
    // wait, which holds the queue and the poll interval.
    for row in project.sql("SELECT name, duration_s FROM stages") {
        let seconds = row["duration_s"].as_f64().unwrap();
        assert_eq!(seconds.fract(), 0.0, "{row}");
    }

    let again = run_slurm(&project, &recipe);
    assert_eq!(again["executed"], 0, "{again}");
    assert_eq!(again["cached"], 4, "{again}");

    // The local backend gives the same keys and the same metrics.
    let local = Project::new();
    assert_eq!(local.run_json(&recipe, &[])["executed"], 4);
    assert_eq!(plan_keys(&local, &recipe), keys);
    assert_eq!(metrics(&local), metrics(&project));
}

const WORKER_RECIPE: &str = r#"
[experiment]
name = "slurm-mae"

[stage.millionaid]
kind = "command"
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth millionaid --out \"$1\" --images 16 --size 32 --seed 1", "sh", "{out}"]

[stage.pretrain]
kind = "mae-pretrain"
needs = ["millionaid"]
dataset = "millionaid"
model = "vit-tiny"
# Enough steps (several seconds) that a requeue issued at step 5 reaches the worker mid-run.
steps = 240
batch_size = 4
base_lr = 1.5e-3
warmup_steps = 2
decoder_embed_dim = 32
decoder_depth = 1
decoder_num_heads = 2
"#;

/// A project with the worker recipe and the `vit-tiny` preset it names.
pub(crate) fn worker_project(project: Project) -> (Project, PathBuf) {
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("mae.toml", WORKER_RECIPE);
    (project, recipe)
}

/// Progress steps in a log, in order.
pub(crate) fn progress_steps(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("\"event\":\"progress\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .collect()
}

#[test]
fn a_requeued_worker_job_resumes_from_its_checkpoint_with_the_local_metrics() {
    let (project, recipe) = worker_project(project());
    let keys = plan_keys(&project, &recipe);
    let pretrain_key = &keys.iter().find(|(n, _)| n == "pretrain").unwrap().1;
    let log_path = project
        .results()
        .join("work")
        .join(pretrain_key)
        .join("stage.log");
    let run = rsfm_slurm(
        &project,
        &[
            "run",
            recipe.to_str().unwrap(),
            "--backend",
            "slurm",
            "--json",
        ],
    )
    // One CPU thread in both runs, so the Slurm and the local run sum in the same order: their
    // metrics are compared for equality below.
    .env("OMP_NUM_THREADS", "1")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_until("the worker's fifth step", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        progress_steps(&log).last().is_some_and(|s| *s >= 5)
    });
    let job = job_id(&project, pretrain_key).to_string();
    slurm_client("scontrol", &["requeue", &job]);
    let out = wait(run);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = last_json_line(&text(&out.stdout));
    assert_eq!(summary["executed"], 2, "{summary}");

    // The requeued job ran the worker again, which went on from its checkpoint.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("DUE TO JOB REQUEUE"),
        "the job was not requeued:\n{log}"
    );
    let stopped_at: u64 = log
        .split("stopping after step ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the worker saved no checkpoint on SIGTERM:\n{log}"));
    assert!(stopped_at >= 5, "{log}");
    let (_, after) = log
        .split_once(&format!("resuming from step {stopped_at} "))
        .unwrap_or_else(|| {
            panic!("the requeued worker did not resume from step {stopped_at}:\n{log}")
        });
    let resumed = progress_steps(after);
    assert_eq!(resumed.first(), Some(&(stopped_at + 1)), "{after}");
    assert_eq!(resumed.last(), Some(&240));
    assert_eq!(
        job_id(&project, pretrain_key).to_string(),
        job,
        "one job, requeued"
    );

    let again = run_slurm(&project, &recipe);
    assert_eq!(again["executed"], 0, "{again}");

    // The same recipe run locally: same keys, same metrics.
    let (local, local_recipe) = worker_project(Project::new());
    let out = local
        .command(&[
            "run",
            local_recipe.to_str().unwrap(),
            "--json",
            "--gpus",
            "none",
        ])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(last_json_line(&text(&out.stdout))["executed"], 2);
    assert_eq!(plan_keys(&local, &local_recipe), keys);
    assert_eq!(metrics(&local), metrics(&project));
}

/// Starts `rsfm run --backend slurm` on the counting stage of the interrupt tests; the run, the
/// stage's key and its work dir.
fn start_count_run(project: &Project) -> (Child, String, PathBuf) {
    project.write("count.sh", COUNT);
    let recipe = project.write("count.toml", COUNT_RECIPE);
    let key = plan_keys(project, &recipe)[0].1.clone();
    let work = project.results().join("work").join(&key);
    let run = rsfm_slurm(
        project,
        &["run", recipe.to_str().unwrap(), "--backend", "slurm"],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    (run, key, work)
}

#[test]
fn scancel_of_a_running_job_is_reported_interrupted_and_the_rerun_completes_it() {
    let project = project();
    let (run, key, work) = start_count_run(&project);
    wait_until("step 2", || {
        std::fs::read_to_string(work.join("step"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|s| s >= 2)
    });
    let job = job_id(&project, &key).to_string();
    slurm_client("scancel", &[&job]);
    let out = wait(run);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        project.sql("SELECT status FROM stages")[0]["status"],
        "interrupted"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&project.ok(&["cache", "ls", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0);
    let status = rsfm_slurm(&project, &["status"]).output().unwrap();
    let status = text(&status.stdout);
    assert!(
        status.contains(&format!("slurm: job {job} (CANCELLED)")),
        "{status}"
    );

    let summary = run_slurm(&project, &project.path("count.toml"));
    assert_eq!(summary["executed"], 1, "{summary}");
    let starts = resume_starts(&work);
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts[1] >= 2, "the rerun resumed from step {}", starts[1]);
}

/// Runs `recipe` with `--backend slurm`, requires exit code 2 and a message naming
/// `recipe:line_col`; the message.
fn rejected_at(project: &Project, recipe: &Path, line_col: &str) -> String {
    let out = rsfm_slurm(
        project,
        &["run", recipe.to_str().unwrap(), "--backend", "slurm"],
    )
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!("{}:{line_col}: Slurm rejects", recipe.display());
    assert!(stderr.contains(&at), "{stderr}");
    stderr
}

#[test]
fn an_unknown_partition_fails_before_anything_runs_naming_the_recipe_line() {
    cluster();
    let project = project();
    let recipe = project.write(
        "bad.toml",
        "[experiment]\nname = \"bad-site\"\n\n[stage.hello]\nkind = \"command\"\n\
         argv = [\"true\"]\n\n\
         [slurm]\npartition = \"no-such-partition\"\n",
    );
    let stderr = rejected_at(&project, &recipe, "9:13");
    assert!(stderr.contains("--partition=no-such-partition"), "{stderr}");
    assert_eq!(project.sql("SELECT count(*) AS n FROM stages")[0]["n"], 0);
    assert!(!project.results().join("work").exists());
}

#[test]
fn with_the_daemons_down_a_slurm_run_fails_in_seconds_and_changes_nothing() {
    cluster();
    let dir = tempfile::tempdir().unwrap();
    slurm_local("start", dir.path());
    slurm_local("stop", dir.path());
    let status = Command::new(script())
        .args(["status", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!status.status.success(), "{}", text(&status.stdout));

    let project = project();
    let recipe = repo_root().join("recipes/examples/design/example.toml");
    let start = Instant::now();
    let out = project
        .command(&["run", recipe.to_str().unwrap(), "--backend", "slurm"])
        .env("SLURM_CONF", dir.path().join("slurm.conf"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        stderr.contains("the Slurm controller does not answer"),
        "{stderr}"
    );
    assert!(!project.results().exists(), "the results dir was created");
}

#[test]
fn ctrl_c_cancels_the_runs_jobs_and_marks_the_stages_interrupted() {
    let project = project();
    let (run, key, work) = start_count_run(&project);
    wait_until("the first step", || work.join("step").exists());
    // SAFETY: sending SIGINT to the child we spawned.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let out = wait(run);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let job = job_id(&project, &key).to_string();
    let state = slurm_client("squeue", &["-h", "-t", "all", "-o", "%T", "-j", &job]);
    assert_eq!(state.trim(), "CANCELLED");
    assert_eq!(
        project.sql("SELECT status FROM stages")[0]["status"],
        "interrupted"
    );
}

#[test]
fn a_job_stopped_at_a_checkpoint_is_submitted_again_with_the_kinds_time_limit() {
    let project = project();
    // Exits 3 (stopped at a checkpoint) on its first run, finishes on the next.
    let recipe = project.write(
        "resume.toml",
        "[experiment]\nname = \"slurm-resume\"\n\n[stage.twice]\nkind = \"command\"\n\
         argv = [\"sh\", \"-c\", \"if [ -e \\\"$RSFM_WORK_DIR/ckpt\\\" ]; then echo '{{\\\"resumed\\\": 1}}' > \\\"$1/metrics.json\\\"; else touch \\\"$RSFM_WORK_DIR/ckpt\\\"; exit 3; fi\", \"sh\", \"{out}\"]\n\n\
         [slurm]\ntime_limit = { default = \"1h\", command = \"5m\" }\n",
    );
    let key = plan_keys(&project, &recipe)[0].1.clone();
    let summary = run_slurm(&project, &recipe);
    assert_eq!(summary["executed"], 1, "{summary}");
    // Two jobs ran the stage: the first exited 3, the second (the one recorded) completed.
    let (jobs, listed) = jobs_of("slurm-resume/twice", "%T|%l");
    assert_eq!(jobs.len(), 2, "{listed}");
    assert!(jobs[0].1.starts_with("FAILED|5:00|"), "{listed}");
    assert!(jobs[1].1.starts_with("COMPLETED|5:00|"), "{listed}");
    assert_eq!(job_id(&project, &key), jobs[1].0);
    let resumed = project.sql("SELECT value FROM metrics WHERE name = 'resumed'");
    assert_eq!(resumed[0]["value"].as_f64(), Some(1.0));
}

#[test]
fn a_gpu_request_the_cluster_cannot_meet_is_rejected_naming_the_gpu_flag_line() {
    cluster();
    let project = project();
    let recipe = project.write(
        "gpu.toml",
        "[experiment]\nname = \"gpu-site\"\n\n[stage.train]\nkind = \"command\"\n\
         argv = [\"true\"]\ngpus = 1\n\n[slurm]\ngpu_flag = \"gpus\"\n",
    );
    let stderr = rejected_at(&project, &recipe, "10:12");
    assert!(stderr.contains("`--gpus=1`"), "{stderr}");
}

#[test]
fn a_two_process_mae_stage_runs_as_two_srun_ranks_like_it_runs_locally() {
    use crate::data_parallel::{recipe, same_losses};
    let slurm = project();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    slurm.write("recipes/models/vit-tiny.toml", &preset);
    let mae = slurm.write("mae.toml", &recipe(2, 4));
    let worker = crate::common::worker();
    let run = |project: &Project, backend: &str| {
        let mut command = rsfm_slurm(
            project,
            &[
                "run",
                mae.to_str().unwrap(),
                "--backend",
                backend,
                "--gpus",
                "none",
                "--json",
            ],
        );
        let out = command.env("RSFM_WORKER", &worker).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        last_json_line(&text(&out.stdout))
    };
    let first = run(&slurm, "slurm");
    assert_eq!(first["executed"], 2, "{first}");

    // One job of two tasks: its script starts the ranks with srun, and both joined one group.
    let key = slurm.stage_key(&mae, "pretrain");
    let work = slurm.results().join("work").join(&key);
    let script = std::fs::read_to_string(work.join("slurm-job.sh")).unwrap();
    assert!(script.contains("exec srun --ntasks=2 "), "{script}");
    let job = job_id(&slurm, &key).to_string();
    let listed = slurm_client("squeue", &["-h", "-t", "all", "-o", "%T|%D|%C", "-j", &job]);
    assert_eq!(
        listed.trim(),
        "COMPLETED|1|2",
        "state|nodes|CPUs of job {job}"
    );
    let log = std::fs::read_to_string(work.join("stage.log")).unwrap();
    assert!(
        log.contains("data parallel over 2 processes, 2 samples each per step"),
        "{log}"
    );

    let again = run(&slurm, "slurm");
    assert_eq!(
        (again["executed"].as_u64(), again["cached"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );

    // The same stage through the local executor: the same curve, written once per step.
    let local = Project::new();
    local.write("recipes/models/vit-tiny.toml", &preset);
    let local_mae = local.write("mae.toml", &recipe(2, 4));
    assert_eq!(local.stage_key(&local_mae, "pretrain"), key);
    let out = local
        .command(&[
            "run",
            local_mae.to_str().unwrap(),
            "--gpus",
            "none",
            "--json",
        ])
        .env("RSFM_WORKER", &worker)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    same_losses(&slurm, "under Slurm", &local, "locally");
}

#[test]
fn ranks_stopped_at_a_checkpoint_are_submitted_again_as_one_job() {
    let project = project();
    // Both ranks exit 3 (stopped at a checkpoint) on the first run and finish on the next;
    // rank 0 writes the metrics.
    let recipe = project.write(
        "resume2.toml",
        "[experiment]\nname = \"slurm-resume-ranks\"\n\n[stage.twice]\nkind = \"command\"\n\
         processes = 2\n\
         argv = [\"sh\", \"-c\", \"c=\\\"$RSFM_WORK_DIR/ckpt-$RANK\\\"; if [ -e \\\"$c\\\" ]; then [ \\\"$RANK\\\" = 1 ] || echo '{{\\\"world\\\": '$WORLD_SIZE'}}' > \\\"$1/metrics.json\\\"; else touch \\\"$c\\\"; exit 3; fi\", \"sh\", \"{out}\"]\n",
    );
    let summary = run_slurm(&project, &recipe);
    assert_eq!(summary["executed"], 1, "{summary}");
    let (jobs, listed) = jobs_of("slurm-resume-ranks/twice", "%T|%C");
    assert_eq!(jobs.len(), 2, "{listed}");
    assert!(jobs[0].1.starts_with("FAILED|2|"), "{listed}");
    assert!(jobs[1].1.starts_with("COMPLETED|2|"), "{listed}");
    let world = project.sql("SELECT value FROM metrics WHERE name = 'world'");
    assert_eq!(world[0]["value"].as_f64(), Some(2.0));
}
