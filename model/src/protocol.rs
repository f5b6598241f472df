//! The worker protocol shared by the harness and `rsfm-worker` (see DESIGN.md, *Worker protocol*).
//!
//! The harness writes a [`StageSpec`] as `stage.json`, runs
//! `rsfm-worker run --stage stage.json --out DIR`, reads one [`Event`] per stdout line and,
//! when the worker exits 0, `DIR/metrics.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Name of the final metrics file a stage writes into its output dir.
pub const METRICS_FILE: &str = "metrics.json";

/// How a worker (or any stage process) ends: its exit status is part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// 0: the stage succeeded and `metrics.json` is written.
    Ok,
    /// 1: the stage failed (e.g. a non-finite loss).
    Failed,
    /// 2: a bad command line or `stage.json`.
    BadSpec,
    /// 3: stopped (`--stop-after`, SIGTERM, SIGINT) with a resume checkpoint in the work dir;
    /// starting the same stage again continues from it.
    Stopped,
}

impl WorkerExit {
    /// The exit status.
    pub const fn code(self) -> u8 {
        match self {
            WorkerExit::Ok => 0,
            WorkerExit::Failed => 1,
            WorkerExit::BadSpec => 2,
            WorkerExit::Stopped => 3,
        }
    }
}

#[cfg(feature = "torch")]
impl From<WorkerExit> for std::process::ExitCode {
    fn from(exit: WorkerExit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Everything a worker needs to run one stage: the contents of `stage.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Stage kind: `prepare`, `mae-pretrain`, `finetune-det`, `finetune-seg`, `evaluate`.
    pub kind: String,
    /// Resolved kind-specific parameters, provenance stripped.
    pub params: serde_json::Value,
    /// Output dirs of the stages this one needs, by stage name (without matrix suffix).
    #[serde(default)]
    pub inputs: BTreeMap<String, PathBuf>,
    /// Dataset roots by dataset name.
    #[serde(default)]
    pub datasets: BTreeMap<String, PathBuf>,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Seed for every random choice the stage makes.
    pub seed: u64,
    /// Directory that survives failures: periodic checkpoints for resume.
    pub work_dir: PathBuf,
}

/// One line of a worker's stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Training or evaluation progress.
    Progress {
        /// Steps done.
        step: u64,
        /// Steps in all.
        total: u64,
        /// Loss of the last step, when it trains.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loss: Option<f64>,
        /// Throughput since the last progress event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        items_per_s: Option<f64>,
        /// Learning rate of the last step (the peak group's, before layer-wise decay), when it
        /// trains; absent in events of workers that predate it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// One metric value, optionally at a training step.
    Metric {
        /// Metric name.
        name: String,
        /// Its value.
        value: f64,
        /// The training step it belongs to; none for a final metric.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<u64>,
    },
    /// A log message.
    Log {
        /// `info`, `warn` or `error`.
        level: String,
        /// The message.
        msg: String,
    },
}

impl Event {
    /// Parses one stdout line; `None` for lines that are not protocol events (plain prints).
    pub fn parse_line(line: &str) -> Option<Event> {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        serde_json::from_str(line).ok()
    }

    /// Serialises the event as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_in_the_documented_shape() {
        let line = r#"{"event":"progress","step":3,"total":10,"loss":0.5,"items_per_s":12.0}"#;
        let event = Event::parse_line(line).unwrap();
        assert_eq!(
            event,
            Event::Progress {
                step: 3,
                total: 10,
                loss: Some(0.5),
                items_per_s: Some(12.0),
                lr: None,
            }
        );
        assert_eq!(event.to_line(), line);
        let with_lr = r#"{"event":"progress","step":3,"total":10,"loss":0.5,"lr":0.001}"#;
        let event = Event::parse_line(with_lr).unwrap();
        assert!(matches!(event, Event::Progress { lr: Some(lr), .. } if lr == 1e-3));
        assert_eq!(event.to_line(), with_lr);
        let metric = Event::parse_line(r#"{"event":"metric","name":"mIoU","value":0.9}"#).unwrap();
        assert_eq!(
            metric,
            Event::Metric {
                name: "mIoU".into(),
                value: 0.9,
                step: None
            }
        );
        assert_eq!(Event::parse_line("plain text"), None);
    }
}
