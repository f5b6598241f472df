//! Helpers shared by the integration tests: the reference vectors, turns at torch's global
//! random generator, and a test run alone in its own process.

use serde_json::Value;

/// The `cases` array of `../shared/refdata/<file>`; panics naming the file when it is missing
/// or malformed.
pub fn refdata_cases(file: &str) -> Vec<Value> {
    let path = format!("{}/../../shared/refdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"));
    doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no `cases` array"))
        .clone()
}

/// Holds torch's global random generator for the caller until the guard drops: tests that seed
/// it or draw from it (module initialisation included) in this process take turns, so that a
/// seeded test sees the same numbers whatever runs beside it.
#[cfg(feature = "torch")]
pub fn torch_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Variable that marks a process started by [`rerun_alone`].
#[cfg(feature = "torch")]
const ALONE: &str = "RSFM_TEST_ALONE";

/// For measurements of the whole process (its peak resident set): runs the test `name` (its
/// path in this binary) alone in a fresh process of this test binary and returns true, after
/// checking that it ran and passed; in that process, returns false and the test measures.
#[cfg(feature = "torch")]
pub fn rerun_alone(name: &str) -> bool {
    if std::env::var_os(ALONE).is_some() {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed when run alone");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{name} did not run alone: {stdout}"
    );
    true
}
