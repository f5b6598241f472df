//! Failures: retries with backoff, a failed stage skips its dependents, `--keep-going` runs the
//! rest, the stderr tail is stored, and nothing failed enters the cache.

use crate::common::{last_json_line, text, Project};

const RECIPE: &str = r#"
[experiment]
name = "failures"

[stage.flaky]
kind = "command"
retries = 2
retry_backoff_s = 0.1
argv = ["sh", "-c", "n=$(cat \"$RSFM_WORK_DIR/n\" 2>/dev/null || echo 0); echo $((n + 1)) > \"$RSFM_WORK_DIR/n\"; [ \"$n\" -ge 1 ]"]

[stage.broken]
kind = "command"
argv = ["sh", "-c", "echo 'boom: the input is wrong' >&2; exit 4"]

[stage.after_broken]
kind = "command"
needs = ["broken"]
argv = ["true"]

[stage.independent]
kind = "command"
argv = ["sh", "-c", "echo '{{\"ok\": 1}}' > \"$0/metrics.json\"", "{out}"]
"#;

#[test]
fn a_failure_skips_its_dependents_and_keep_going_runs_the_rest() {
    let project = Project::new();
    let recipe = project.write("failures.toml", RECIPE);
    let recipe_arg = recipe.to_str().unwrap();
    let out = project.rsfm(&[
        "run",
        recipe_arg,
        "--gpus",
        "none",
        "--keep-going",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary = last_json_line(&text(&out.stdout));
    assert_eq!(
        summary["executed"], 2,
        "flaky (second attempt) and independent ran: {summary}"
    );
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["skipped"], 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("4 stages: 0 cached, 2 ran, 1 failed, 1 skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stage.log"),
        "the summary names the failure's log: {stderr}"
    );

    let status: serde_json::Value =
        serde_json::from_str(&project.ok(&["status", "--json"])).unwrap();
    let failed: Vec<&serde_json::Value> = status
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "broken");
    assert!(failed[0]["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("boom: the input is wrong"));
    assert!(failed[0]["error"].as_str().unwrap().contains("status 4"));
    let attempts = project.sql("SELECT count(*) AS n FROM stage_runs r JOIN stages s ON s.key = r.stage_key WHERE s.name = 'flaky'");
    assert_eq!(attempts[0]["n"], 2, "flaky failed once, then succeeded");

    // Only the two successes are cached; a rerun retries the failure alone.
    let listed: serde_json::Value =
        serde_json::from_str(&project.ok(&["cache", "ls", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let out = project.rsfm(&["run", recipe_arg, "--gpus", "none", "--json"]);
    let summary = last_json_line(&text(&out.stdout));
    assert_eq!(
        (summary["cached"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(1)),
        "{summary}"
    );
}

#[test]
fn without_keep_going_the_run_stops_after_a_failure() {
    let project = Project::new();
    let recipe = project.write(
        "failures.toml",
        &RECIPE.replace("[stage.flaky]", "[stage.flaky]\nneeds = [\"broken\"]"),
    );
    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let summary = last_json_line(&text(&out.stdout));
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(
        summary["executed"].as_u64().unwrap() + summary["skipped"].as_u64().unwrap(),
        3,
        "{summary}"
    );
    // The summary says why each stage was skipped.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("skipped (they need a failed stage)"),
        "{stderr}"
    );
    if summary["not_started"].as_u64().unwrap() > 0 {
        assert!(stderr.contains("--keep-going runs them"), "{stderr}");
    }
}

#[test]
fn config_show_origin_names_the_file_and_line_of_each_value() {
    let project = Project::new();
    project.write("base.toml", "[experiment]\nname = \"origins\"\nseed = 3\n\n[stage.a]\nkind = \"command\"\nargv = [\"true\"]\n");
    let recipe = project.write("top.toml", "extends = [\"base.toml\"]\n\n[experiment]\nseed = { value = 7, source = \"assumed: a fixed seed\" }\n");
    let out = project.ok(&["config", "show", recipe.to_str().unwrap(), "--origin"]);
    let seed = out
        .lines()
        .find(|l| l.starts_with("experiment.seed"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        seed.contains("7") && seed.contains("top.toml:4") && seed.contains("assumed: a fixed seed"),
        "{seed}"
    );
    let name = out
        .lines()
        .find(|l| l.starts_with("experiment.name"))
        .unwrap();
    assert!(name.contains("base.toml:2"), "{name}");
}

#[test]
fn a_flood_of_stderr_leaves_a_bounded_tail() {
    let project = crate::common::Project::new();
    let recipe = project.write(
        "loud.toml",
        r#"
[experiment]
name = "loud"

[stage.loud]
kind = "command"
argv = ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x >&2; echo >&2; seq 1 100000 >&2; exit 4"]
"#,
    );
    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = project.sql(
        "SELECT length(stderr_tail) AS n, stderr_tail AS tail FROM stages WHERE name = 'loud'",
    );
    let n = rows[0]["n"].as_i64().unwrap();
    assert!(n <= 16 << 10, "a tail of {n} bytes");
    assert!(
        rows[0]["tail"].as_str().unwrap().ends_with("100000"),
        "{}",
        rows[0]["tail"]
    );
    let shown = crate::common::text(&out.stderr);
    assert!(
        shown.len() < 64 << 10,
        "{} bytes on the terminal",
        shown.len()
    );
}

#[test]
fn a_background_child_holding_stdout_does_not_hold_the_run_and_is_ended() {
    let project = Project::new();
    let pid_file = project.path("server.pid");
    let recipe = project.write(
        "server.toml",
        &format!(
            r#"
[experiment]
name = "server"

[stage.serve]
kind = "command"
argv = ["sh", "-c", "sleep 300 & echo $! > {}; echo started"]
"#,
            pid_file.display()
        ),
    );
    let started = std::time::Instant::now();
    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The stage's own process exits at once; the run must not wait out the 300 s child.
    assert!(seconds < 60.0, "the run took {seconds:.1} s");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("left processes running") && stderr.contains("SIGTERM"),
        "{stderr}"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the background child {pid} still runs");
    let rows = project.sql("SELECT status FROM stages WHERE name = 'serve'");
    assert_eq!(rows[0]["status"], "succeeded");
}

#[test]
fn names_with_control_characters_reach_the_terminal_escaped() {
    let project = Project::new();
    let recipe = project.write(
        "escapes.toml",
        r#"
[experiment]
name = "red\u001b[31mname\u0007"

[stage.broken]
kind = "command"
argv = ["sh", "-c", "printf 'bell\\a and \\033[2J clear\\n' >&2; exit 1"]
"#,
    );
    let out = project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"]);
    assert_eq!(out.status.code(), Some(1));
    let out_status = project.rsfm(&["status"]);
    for (what, bytes) in [("run", &out.stderr), ("status", &out_status.stdout)] {
        let shown = text(bytes);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{what} printed raw control characters: {shown:?}"
        );
        assert!(shown.contains("red\\u{1b}[31mname"), "{what}: {shown}");
    }
}

#[test]
fn status_filters_by_recipe_and_clear_dismisses_failures_until_they_run_again() {
    let project = Project::new();
    let broken = project.write(
        "broken.toml",
        "[experiment]\nname = \"broken\"\n\n[stage.broken]\nkind = \"command\"\nargv = [\"false\"]\n",
    );
    let fine = project.write(
        "fine.toml",
        "[experiment]\nname = \"fine\"\n\n[stage.fine]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    let run = |recipe: &std::path::Path| {
        project.rsfm(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
    };
    assert_eq!(run(&broken).status.code(), Some(1));
    assert_eq!(run(&fine).status.code(), Some(0));
    let shown = project.ok(&["status"]);
    assert!(shown.contains("broken/broken"), "{shown}");
    // Another recipe's stages only: the failure is not among them.
    let of_fine = project.ok(&["status", fine.to_str().unwrap()]);
    assert!(
        of_fine.contains("no running, failed or interrupted stages"),
        "{of_fine}"
    );

    let cleared = project.ok(&["status", "--clear"]);
    assert!(
        cleared.contains("dismissed 1 failed or interrupted stage"),
        "{cleared}"
    );
    assert!(project
        .ok(&["status"])
        .contains("no running, failed or interrupted stages"));
    assert!(project.ok(&["status", "--all"]).contains("broken/broken"));
    // A new attempt shows it again.
    assert_eq!(run(&broken).status.code(), Some(1));
    assert!(project.ok(&["status"]).contains("broken/broken"));
}
