//! Progress bars: one overall bar and one per running stage, fed by worker events.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rsfm_model::protocol::Event;

/// The run's progress display (hidden with `--json` or when stderr is not a terminal).
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Progress {
    /// A display for `total` stages.
    pub fn new(total: usize, hidden: bool) -> Progress {
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
        Progress { multi, overall }
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
        bar.set_prefix(name.to_string());
        StageBar { bar }
    }

    /// Prints a line above the bars (or to stderr when they are hidden).
    pub fn println(&self, line: &str) {
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
