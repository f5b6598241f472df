//! Executors run one stage's process: locally (this module's [`local`]) or under Slurm.

pub mod command_line;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

/// A fully resolved process to run for a stage.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where stdout lines that are not protocol events and all of stderr go.
    pub log_path: PathBuf,
    /// Wall-clock limit, if the recipe sets one.
    pub time_limit: Option<Duration>,
}

/// How a stage's process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEnd {
    /// Exit status 0.
    Success,
    /// Non-zero exit, a signal, a time-out or a failure to start; with a one-line reason.
    Failure(String),
    /// Stopped because the run was interrupted (Ctrl-C / SIGTERM).
    Interrupted,
}
