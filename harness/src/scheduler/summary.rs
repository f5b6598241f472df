//! The outcome of a run, counted from the stages' final states: the `rsfm run --json` summary
//! and its one line.

use std::path::PathBuf;

use serde::Serialize;

/// The outcome of a run; its JSON form is the documented `rsfm run --json` summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Stages whose process ran and succeeded.
    pub executed: usize,
    /// Stages found in the cache.
    pub cached: usize,
    /// Stages with the same key as a stage this run ran (another recipe's copy of it, e.g. the
    /// data and pretraining two recipes share): its entry serves both, and it is counted here
    /// rather than as cached, so that each key's run counts once.
    pub shared: usize,
    /// Stages that failed.
    pub failed: usize,
    /// Stages not run because a stage they need failed (or the run stopped).
    pub skipped: usize,
    /// Of `skipped`, those not started because the run stopped at a failure (without
    /// `--keep-going`) rather than because they need the failed stage.
    pub not_started: usize,
    /// Stages stopped by an interrupt.
    pub interrupted: usize,
    /// Each failure: stage, reason and log file.
    pub failures: Vec<Failure>,
}

/// One failed stage.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `experiment/stage`.
    pub stage: String,
    /// Why it failed.
    pub reason: String,
    /// Its log file.
    pub log: PathBuf,
}

impl RunSummary {
    /// The one summary line, e.g. `12 stages: 9 cached, 2 ran, 1 failed`.
    pub fn line(&self) -> String {
        let total = self.executed
            + self.cached
            + self.shared
            + self.failed
            + self.skipped
            + self.interrupted;
        let mut parts = vec![
            format!("{} cached", self.cached),
            format!("{} ran", self.executed),
        ];
        let needing = self.skipped - self.not_started;
        let reasoned = self.failed > 0;
        for (n, what) in [
            (self.shared, "shared (the same key as a stage that ran)"),
            (self.failed, "failed"),
            (
                needing,
                if reasoned {
                    "skipped (they need a failed stage)"
                } else {
                    "skipped"
                },
            ),
            (
                self.not_started,
                "not started (the run stops at the first failure; --keep-going runs them)",
            ),
            (self.interrupted, "interrupted"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut line = format!("{total} stages: {}", parts.join(", "));
        if !self.failures.is_empty() {
            let logs: Vec<String> = self
                .failures
                .iter()
                .map(|f| format!("{}: see {}", f.stage, f.log.display()))
                .collect();
            line.push_str(&format!(" ({})", logs.join("; ")));
        }
        line
    }

    /// Whether the run was interrupted.
    pub fn was_interrupted(&self) -> bool {
        self.interrupted > 0
    }
}
