//! `rsfm sql` is bounded: a runaway query stops at its time limit with exit 2, a huge value at
//! the memory limit, and two million rows stream out in little memory.

use std::io::Read;
use std::process::Stdio;

use crate::common::{text, Project};

/// A project whose results database exists (one trivial stage ran).
fn project_with_results() -> Project {
    let project = Project::new();
    let recipe = project.write(
        "one.toml",
        "[experiment]\nname = \"one\"\n\n[stage.one]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    project.run_json(&recipe, &[]);
    project
}

#[test]
fn a_runaway_query_stops_at_its_time_limit_and_a_huge_value_at_the_memory_limit() {
    let project = project_with_results();
    let started = std::time::Instant::now();
    let out = project
        .command(&[
            "sql",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        ])
        .env("RSFM_SQL_TIME_LIMIT_S", "1")
        .output()
        .expect("rsfm runs");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(seconds < 30.0, "stopped after {seconds:.1} s");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("time limit of 1 s") && stderr.contains("--time-limit"),
        "{stderr}"
    );

    let out = project.rsfm(&[
        "sql",
        "SELECT randomblob(400000000)",
        "--max-memory-mb",
        "64",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("more than 64 MiB"));
}

/// Resident memory of `pid` in KiB, from /proc.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn two_million_rows_stream_out_in_bounded_memory() {
    let project = project_with_results();
    let mut child = project
        .command(&[
            "sql",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT x, 'stage-' || x AS name FROM c",
            "--format",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rsfm starts");
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut chunk = vec![0u8; 1 << 16];
    let (mut bytes, mut lines, mut peak_kib) = (0usize, 0usize, 0u64);
    let mut last = Vec::new();
    loop {
        let n = stdout.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        // Sampled while the rows flow: collecting them all first would show here.
        if bytes / (1 << 20) != (bytes + n) / (1 << 20) || bytes == 0 {
            peak_kib = peak_kib.max(resident_kib(pid).unwrap_or(0));
        }
        bytes += n;
        lines += chunk[..n].iter().filter(|&&b| b == b'\n').count();
        last = chunk[..n].to_vec();
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(lines, 2_000_001, "a header and two million rows");
    assert!(text(&last).ends_with("2000000,stage-2000000\r\n"));
    assert!(
        peak_kib < 200 << 10,
        "rsfm sql held {peak_kib} KiB while streaming"
    );
}
