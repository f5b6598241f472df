//! Progress bars: one overall bar and one per running stage, fed by worker events. Without a
//! terminal (nohup, Slurm, CI) the bars are replaced by one line per stage start and finish.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rsfm_model::protocol::Event;

use crate::query::{for_terminal, for_terminal_lines};
use crate::store::MetricRow;

/// Final top-level metrics (no per-class `iou.X`) shown on a stage's `finished` line, at most.
const HEADLINE_METRICS: usize = 4;

/// The run's progress display: bars on a terminal, start/finish lines otherwise, nothing with
/// `--json`.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Print one line per stage start and finish (stderr is not a terminal).
    lines: bool,
}

impl Progress {
    /// A display for `total` stages.
    pub fn new(total: usize, hidden: bool) -> Progress {
        let lines = !hidden && !std::io::stderr().is_terminal();
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} stages {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("rsfm run");
        Progress {
            multi,
            overall,
            lines,
        }
    }

    /// Notes that an attempt of stage `name` starts (a line when there is no terminal).
    pub fn stage_started(&self, name: &str, attempt: u32, attempts: u32) {
        if self.lines {
            let attempt = if attempts > 1 {
                format!(" (attempt {attempt}/{attempts})")
            } else {
                String::new()
            };
            eprintln!("{} started  {}{attempt}", clock(), for_terminal(name));
        }
    }

    /// Notes that stage `name` succeeded after `seconds` with `metrics` (a line with its
    /// duration and first final metrics when there is no terminal).
    pub fn stage_finished(&self, name: &str, seconds: f64, commit_s: f64, metrics: &[MetricRow]) {
        if self.lines {
            let headline: Vec<String> = metrics
                .iter()
                .filter(|m| m.step.is_none() && !m.name.contains('.'))
                .take(HEADLINE_METRICS)
                .map(|m| {
                    let value = crate::query::format_number(m.value);
                    format!("{} {value}", for_terminal(&m.name))
                })
                .collect();
            let metrics = if headline.is_empty() {
                String::new()
            } else {
                format!(": {}", headline.join(", "))
            };
            eprintln!(
                "{} finished {} in {seconds:.1} s (commit {commit_s:.1} s){metrics}",
                clock(),
                for_terminal(name)
            );
        }
    }

    /// Marks one more stage as done.
    pub fn stage_done(&self) {
        self.overall.inc(1);
    }

    /// A bar for a running stage.
    pub fn stage_bar(&self, name: &str) -> StageBar {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(for_terminal(name));
        StageBar { bar }
    }

    /// Prints a line above the bars (or to stderr when they are hidden), its control characters
    /// escaped (names in it come from recipes).
    pub fn println(&self, line: &str) {
        let line = for_terminal_lines(line);
        let line = line.as_ref();
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

/// The bar of one running stage.
pub struct StageBar {
    bar: ProgressBar,
}

impl StageBar {
    /// Applies a progress event.
    pub fn update(&self, event: &Event) {
        if let Event::Progress {
            step,
            total,
            loss,
            items_per_s,
            ..
        } = event
        {
            self.bar.set_length(*total);
            self.bar.set_position(*step);
            let mut msg = String::new();
            if let Some(loss) = loss {
                msg.push_str(&format!("loss {loss:.4}"));
            }
            if let Some(rate) = items_per_s {
                msg.push_str(&format!(" {rate:.1} items/s"));
            }
            self.bar.set_message(msg);
        }
    }
}

impl Drop for StageBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The time of day (UTC) that prefixes start and finish lines.
fn clock() -> String {
    let now = crate::time::now_rfc3339();
    now.get(11..19).unwrap_or(&now).to_string()
}
