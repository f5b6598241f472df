//! Faults: a flipped byte in a cached file is found by `rsfm cache verify` and by the stage that
//! reads the entry, which reruns its producer instead of using bad data; a damaged `rsfm.db` is
//! reported, never recreated.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{text, Project};

const RECIPE: &str = r#"
[experiment]
name = "faults"

[stage.generate]
kind = "command"
argv = ["sh", "generate.sh", "{out}"]
deps = ["generate.sh"]

[stage.sum]
kind = "command"
needs = ["generate"]
argv = ["sh", "sum.sh", "{input.generate}", "{out}"]
deps = ["sum.sh"]
"#;

const GENERATE: &str = r#"seq 1 1000 > "$1/numbers.txt"
echo '{"count": 1000}' > "$1/metrics.json"
"#;

const SUM: &str = r#"total=$(awk '{ s += $1 } END { print s }' "$1/numbers.txt")
echo "{\"total\": $total}" > "$2/metrics.json"
"#;

fn setup() -> (Project, PathBuf) {
    Project::with_recipe(
        "faults.toml",
        RECIPE,
        &[("generate.sh", GENERATE), ("sum.sh", SUM)],
    )
}

/// Flips one bit of the byte at `offset` in `path`.
fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn total(project: &Project) -> f64 {
    let rows = project.sql("SELECT value FROM metrics WHERE name = 'total' ORDER BY rowid DESC");
    rows[0]["value"].as_f64().unwrap()
}

#[test]
fn a_flipped_byte_is_found_by_verify_and_the_reader_reruns_its_producer() {
    let (project, recipe) = setup();
    assert_eq!(project.run_json(&recipe, &[])["executed"], 2);
    let clean_total = total(&project);
    assert_eq!(clean_total, 500500.0);
    assert!(project.rsfm(&["cache", "verify"]).status.success());

    let generate = project.entry_dir(&project.stage_key(&recipe, "generate"));
    flip_byte(&generate.join("numbers.txt"), 10);
    let verify = project.rsfm(&["cache", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        text(&verify.stdout).contains("numbers.txt: content changed"),
        "{}",
        text(&verify.stdout)
    );

    // `sum` reads the damaged entry: `generate` runs again first, and `sum` sees good data.
    let out = project
        .command(&[
            "run",
            recipe.to_str().unwrap(),
            "--json",
            "--gpus",
            "none",
            "--force",
            "sum",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = crate::common::last_json_line(&text(&out.stdout));
    assert_eq!(summary["executed"], 2, "{summary}");
    assert_eq!(summary["cached"], 0, "{summary}");
    assert!(
        stderr.contains("does not match its manifest"),
        "the rerun is not explained: {stderr}"
    );
    assert_eq!(total(&project), clean_total);
    assert!(project.rsfm(&["cache", "verify"]).status.success());
    let damaged: Vec<_> = std::fs::read_dir(project.results().join("damaged"))
        .unwrap()
        .collect();
    assert_eq!(damaged.len(), 1, "the damaged entry is kept aside");

    // A flipped byte in a metrics file is found too.
    flip_byte(
        &project
            .entry_dir(&project.stage_key(&recipe, "sum"))
            .join("metrics.json"),
        3,
    );
    let verify = project.rsfm(&["cache", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(text(&verify.stdout).contains("metrics.json: content changed"));
}

#[test]
fn a_damaged_database_is_reported_and_never_recreated() {
    let (project, recipe) = setup();
    project.run_json(&recipe, &[]);
    let db = project.results().join("rsfm.db");
    let garbage = b"\0damaged\0".repeat(1000);
    std::fs::write(&db, &garbage).unwrap();
    for journal in ["rsfm.db-wal", "rsfm.db-shm"] {
        let _ = std::fs::remove_file(project.results().join(journal));
    }
    for args in [
        vec!["results"],
        vec!["status"],
        vec!["sql", "SELECT 1"],
        vec!["run", recipe.to_str().unwrap(), "--gpus", "none"],
    ] {
        let out = project.rsfm(&args);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a damaged database"
        );
        assert!(stderr.contains("is damaged"), "{args:?}: {stderr}");
        assert!(stderr.contains("rsfm.db.damaged"), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            garbage,
            "{args:?} changed the file"
        );
    }
}

const CRASH_RECIPE: &str = r#"
[experiment]
name = "crashes"

[stage.a]
kind = "command"
argv = ["sh", "make.sh", "300", "{out}"]
deps = ["make.sh"]

[stage.b]
kind = "command"
argv = ["sh", "make.sh", "600", "{out}"]
deps = ["make.sh"]

[stage.c]
kind = "command"
argv = ["sh", "make.sh", "900", "{out}"]
deps = ["make.sh"]

[stage.total]
kind = "command"
needs = ["a", "b", "c"]
argv = ["sh", "total.sh", "{input.a}", "{input.b}", "{input.c}", "{out}"]
deps = ["total.sh"]
"#;

/// Writes `$1` thousand numbers (a few hundred KiB to hash and fsync at commit) and their count.
const MAKE: &str = r#"seq 1 "${1}000" > "$2/numbers.txt"
echo "{\"count\": $(wc -l < "$2/numbers.txt")}" > "$2/metrics.json"
"#;

const TOTAL: &str = r#"total=$(cat "$1/numbers.txt" "$2/numbers.txt" "$3/numbers.txt" | awk '{ s += $1 } END { printf "%d", s }')
echo "{\"total\": $total}" > "$4/metrics.json"
"#;

/// A project holding the crash recipe and its scripts.
fn crash_project() -> (Project, PathBuf) {
    Project::with_recipe(
        "crashes.toml",
        CRASH_RECIPE,
        &[("make.sh", MAKE), ("total.sh", TOTAL)],
    )
}

/// `rsfm run RECIPE --gpus none --jobs JOBS` started in the background, its output discarded.
fn spawn_quiet_run(project: &Project, recipe: &Path, jobs: &str) -> std::process::Child {
    project
        .command(&[
            "run",
            recipe.to_str().unwrap(),
            "--gpus",
            "none",
            "--jobs",
            jobs,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The final metrics of every stage, by stage and metric name.
fn final_metrics(project: &Project) -> Vec<(String, String, f64)> {
    project
        .sql(
            "SELECT s.name AS stage, m.name AS metric, m.value AS value FROM metrics m \
             JOIN stages s ON s.key = m.stage_key WHERE m.step IS NULL ORDER BY 1, 2",
        )
        .iter()
        .map(|r| {
            (
                r["stage"].as_str().unwrap().to_string(),
                r["metric"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// A small seeded generator (xorshift64*), so every trial can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The pids of the live children of `parent`.
fn children(parent: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the fields after the last `)`.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// What went wrong after one trial, if anything.
fn check_after_crash(project: &Project) -> Vec<String> {
    let mut problems = Vec::new();
    let verify = project.rsfm(&["cache", "verify"]);
    if !verify.status.success() {
        problems.push(format!("cache verify: {}", text(&verify.stdout)));
    }
    if project.results().join("rsfm.db").exists() {
        let integrity = project.sql("PRAGMA integrity_check");
        if integrity[0]["integrity_check"] != "ok" {
            problems.push(format!("integrity_check: {integrity:?}"));
        }
    }
    let cache = project.results().join("cache");
    for shard in std::fs::read_dir(&cache).into_iter().flatten().flatten() {
        if !shard.path().is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path()).unwrap().flatten() {
            if !entry.path().join("manifest.json").is_file() {
                problems.push(format!("{} has no manifest", entry.path().display()));
            }
        }
    }
    problems
}

#[test]
fn fifty_seeded_kill_9s_lose_nothing_and_reruns_match_an_undisturbed_run() {
    const TRIALS: u64 = 50;
    let (clean, recipe) = crash_project();
    let started = Instant::now();
    assert_eq!(clean.run_json(&recipe, &["--jobs", "2"])["executed"], 4);
    let clean_run = started.elapsed();
    let expected = final_metrics(&clean);
    assert_eq!(expected.len(), 4, "{expected:?}");

    let mut rng = Rng(0x005e_ed0f_c4a5);
    let (mut harness_kills, mut stage_kills, mut lost) = (0, 0, 0);
    let mut recover = Duration::ZERO;
    for trial in 0..TRIALS {
        let (project, recipe) = crash_project();
        let mut run = spawn_quiet_run(&project, &recipe, "2");
        let kill_stage = rng.below(3) == 0;
        let delay = Duration::from_micros(rng.below(clean_run.as_micros() as u64 + 1));
        std::thread::sleep(delay);
        let stage = if kill_stage {
            children(run.id()).first().copied()
        } else {
            None
        };
        match stage {
            // SAFETY: SIGKILL to a stage process of the run this test started.
            Some(pid) => unsafe {
                libc::kill(pid, libc::SIGKILL);
                stage_kills += 1;
            },
            None => {
                run.kill().unwrap();
                harness_kills += 1;
            }
        }
        run.wait().unwrap();
        let mut problems = check_after_crash(&project);
        let rerun = Instant::now();
        let out = project
            .command(&[
                "run",
                recipe.to_str().unwrap(),
                "--gpus",
                "none",
                "--jobs",
                "2",
            ])
            .output()
            .unwrap();
        recover += rerun.elapsed();
        if !out.status.success() {
            problems.push(format!("rerun failed: {}", text(&out.stderr)));
        } else if final_metrics(&project) != expected {
            problems.push(format!("metrics differ: {:?}", final_metrics(&project)));
        }
        problems.extend(check_after_crash(&project));
        if !problems.is_empty() {
            lost += 1;
            eprintln!("trial {trial} (delay {delay:?}, stage kill {kill_stage}): {problems:?}");
        }
    }
    eprintln!(
        "crash trials: {TRIALS}, faults injected: {} (harness {harness_kills}, stage {stage_kills}), \
         results lost: {lost}; clean run {:.0} ms, mean recovery run {:.0} ms",
        harness_kills + stage_kills,
        clean_run.as_secs_f64() * 1e3,
        recover.as_secs_f64() * 1e3 / TRIALS as f64
    );
    assert_eq!(lost, 0, "{lost} of {TRIALS} trials lost or damaged results");
}

const FILL_RECIPE: &str = r#"
[experiment]
name = "full-disk"

[stage.fill]
kind = "command"
argv = ["sh", "fill.sh", "{out}"]
deps = ["fill.sh"]
"#;

/// Writes 3 MiB of data and its size.
const FILL: &str = r#"head -c 3145728 /dev/urandom > "$1/data.bin" || exit 1
echo "{\"bytes\": $(wc -c < "$1/data.bin")}" > "$1/metrics.json"
"#;

/// A tmpfs of `mib` MiB mounted at `dir` for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test needs root to mount a small tmpfs as a full disk (CI runs as root): {}",
            text(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_stage_naming_it_and_the_rerun_completes_after_freeing_space() {
    let (project, recipe) = Project::with_recipe("fill.toml", FILL_RECIPE, &[("fill.sh", FILL)]);
    let _disk = Tmpfs::mount(&project.results(), 8);
    // An rsfm results folder first (one holding other files is refused), then about 2 MiB left
    // free: the stage's 3 MiB do not fit.
    project.ok(&["plan", recipe.to_str().unwrap()]);
    let ballast = project.results().join("ballast");
    std::fs::write(&ballast, vec![7u8; 6 << 20]).unwrap();

    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no space left on device at"), "{stderr}");
    assert!(
        stderr.contains(project.results().to_str().unwrap()),
        "the message does not name the results dir: {stderr}"
    );
    std::fs::remove_file(&ballast).unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(&project.ok(&["cache", "ls", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0, "a half-written entry");
    assert_eq!(
        std::fs::read_dir(project.results().join("tmp"))
            .unwrap()
            .count(),
        0,
        "a build dir was left"
    );
    assert_eq!(
        project.sql("PRAGMA integrity_check")[0]["integrity_check"],
        "ok"
    );
    assert!(project.sql("SELECT * FROM metrics").is_empty());
    assert_eq!(
        project.sql("SELECT status FROM stages")[0]["status"],
        "failed"
    );

    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 1, "{summary}");
    let bytes = project.sql("SELECT value FROM metrics WHERE name = 'bytes'");
    assert_eq!(bytes[0]["value"].as_f64(), Some(3145728.0));
    assert!(project.rsfm(&["cache", "verify"]).status.success());
}

#[test]
fn values_reach_commands_as_single_arguments_never_through_a_shell() {
    let project = Project::new();
    let data = project.path("data $(touch pwned); touch pwned2");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f.txt"), "x").unwrap();
    let recipe = project.write(
        "inject.toml",
        r#"
[experiment]
name = "inject"

[dataset.d]
root = "data $(touch pwned); touch pwned2"

[stage.a]
kind = "command"
datasets = ["d"]
argv = ["sh", "list.sh", "{dataset.d}", "{out}"]
deps = ["list.sh"]
"#,
    );
    project.write(
        "list.sh",
        "ls \"$1\" > \"$2/listing.txt\"\necho '{\"args\": '$#'}' > \"$2/metrics.json\"\n",
    );
    assert_eq!(project.run_json(&recipe, &[])["executed"], 1);
    assert!(!project.path("pwned").exists() && !project.path("pwned2").exists());
    let args = project.sql("SELECT value FROM metrics WHERE name = 'args'");
    assert_eq!(args[0]["value"].as_f64(), Some(2.0), "the root was split");
}

const SLOW_STAGE: &str = r#"
[stage.slow]
kind = "command"
argv = ["sh", "slow.sh", "{out}"]
deps = ["slow.sh"]
"#;

/// Marks its start, runs 2 s, logs its end time in the project folder.
const SLOW: &str = r#"touch ../slow.started
sleep 2
echo run >> ../slow.runs
date +%s%N > ../slow.ended
echo '{"slow": 1}' > "$1/metrics.json"
"#;

#[test]
fn a_second_run_runs_other_keys_while_the_first_holds_a_shared_one_and_readers_work() {
    let project = Project::new();
    project.write("work/slow.sh", SLOW);
    project.write(
        "work/quick.sh",
        "date +%s%N > ../quick.ended\necho '{\"quick\": 1}' > \"$1/metrics.json\"\n",
    );
    let first = project.write(
        "work/first.toml",
        &format!("[experiment]\nname = \"first\"\n{SLOW_STAGE}"),
    );
    let second = project.write(
        "work/second.toml",
        &format!(
            "[experiment]\nname = \"second\"\n{SLOW_STAGE}\n[stage.quick]\nkind = \"command\"\nargv = [\"sh\", \"quick.sh\", \"{{out}}\"]\ndeps = [\"quick.sh\"]\n"
        ),
    );
    let mut run = spawn_quiet_run(&project, &first, "1");
    let waited = Instant::now();
    while !project.path("slow.started").exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Readers work while a run writes.
    project.ok(&["status"]);
    project.ok(&["results"]);

    let out = project
        .command(&[
            "run",
            second.to_str().unwrap(),
            "--gpus",
            "none",
            "--jobs",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(run.wait().unwrap().success());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = crate::common::last_json_line(&text(&out.stdout));
    assert_eq!(
        (summary["executed"].as_u64(), summary["cached"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    assert!(
        stderr.contains("running other stages meanwhile"),
        "{stderr}"
    );
    let runs = std::fs::read_to_string(project.path("slow.runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "the shared key ran twice");
    let when = |file: &str| -> u128 {
        std::fs::read_to_string(project.path(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        when("quick.ended") < when("slow.ended"),
        "the second run only waited instead of running its other key"
    );
}
