//! Executors run one stage's process: on this machine ([`local`]) or as a Slurm job
//! ([`slurm`]). Both run the same command line ([`command_line`]) and report the same
//! [`Finished`]; the scheduler, cache and store do not know which one ran a stage.

pub mod bounded_lines;
pub mod command_line;
pub mod launch;
pub mod local;
pub mod slurm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rsfm_model::protocol::Event;
use tokio::sync::watch;

use crate::plan::PlannedStage;

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
    /// Copies of the process to start as data-parallel ranks (the stage's `processes`, else
    /// its `gpus`; at least 1): processes on this machine, or `srun` tasks of one Slurm job.
    pub ranks: u32,
}

/// How a stage's process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEnd {
    /// Exit status 0.
    Success,
    /// Non-zero exit, a signal, a time-out or a failure to start; with a one-line reason.
    Failure(String),
    /// Stopped because the run was interrupted (Ctrl-C / SIGTERM, or `scancel`).
    Interrupted,
    /// Stopped at a resume checkpoint without this run asking (exit status
    /// [`STOPPED_AT_CHECKPOINT`], e.g. on a SIGTERM from elsewhere or Slurm's time-limit
    /// signal): starting it again continues from the checkpoint.
    Stopped,
}

/// Exit status of a stage process that stopped at a resume checkpoint (the worker protocol).
pub const STOPPED_AT_CHECKPOINT: i32 = rsfm_model::protocol::WorkerExit::Stopped.code() as i32;

/// Starts of one stage in a row after it stopped at a checkpoint, at most, on either backend.
pub const MAX_RESUMES: u32 = 20;

/// What a finished process left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub end: ProcessEnd,
    /// The last lines of its stderr (under Slurm: of its log).
    pub stderr_tail: String,
    /// What was done about processes it left running after it exited, if any.
    pub leftovers: Option<String>,
    /// Seconds the process itself ran, where the backend knows it better than the wall time
    /// around [`Executor::run`] (Slurm: the job's `RunTime`, without its queue wait and the
    /// poll interval); `None`: that wall time is it.
    pub run_s: Option<f64>,
}

impl Finished {
    /// A failure with no output, e.g. a process that could not start.
    pub fn failure(reason: String) -> Finished {
        Finished {
            end: ProcessEnd::Failure(reason),
            stderr_tail: String::new(),
            leftovers: None,
            run_s: None,
        }
    }
}

/// Where a stage's process runs, and which device it is told to use.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The worker's device: `cpu` or `cuda:0`.
    pub device: String,
    /// `CUDA_VISIBLE_DEVICES` to set, when this harness chose the devices.
    pub visible_devices: Option<String>,
}

impl Placement {
    /// The placement of a stage that asks for `wanted` GPUs in a Slurm job: Slurm sets
    /// `CUDA_VISIBLE_DEVICES` to the GPUs it allocated to the job.
    pub fn on_cluster(wanted: u32) -> Placement {
        Placement {
            device: if wanted == 0 { "cpu" } else { "cuda:0" }.to_string(),
            visible_devices: None,
        }
    }
}

/// Makes `command` start in its own process group, so that signals sent to the group reach the
/// whole stage and a terminal's Ctrl-C meant for rsfm does not reach it; with
/// `die_with_harness`, it is killed when rsfm dies.
pub(crate) fn own_process_group(command: &mut tokio::process::Command, die_with_harness: bool) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::setpgid(0, 0);
            if die_with_harness {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// The backend that runs stages (`rsfm run --backend local|slurm`).
#[derive(Clone)]
pub enum Executor {
    /// Processes on this machine, on GPUs leased from `--gpus`.
    Local,
    /// One Slurm job per stage; the cluster allocates the GPUs.
    Slurm(Arc<slurm::SlurmExecutor>),
}

impl Executor {
    /// Runs `invocation` for `stage` to its end, calling `on_event` for every protocol event,
    /// until it ends or `cancel` turns true.
    pub async fn run(
        &self,
        stage: &PlannedStage,
        invocation: &Invocation,
        on_event: impl FnMut(Event) + Send,
        cancel: watch::Receiver<bool>,
    ) -> Finished {
        match self {
            Executor::Local => local::run(invocation, on_event, cancel).await,
            Executor::Slurm(slurm) => slurm.run(stage, invocation, on_event, cancel).await,
        }
    }

    /// What happens to running stages on Ctrl-C, for the message that says so.
    pub fn stopping(&self) -> &'static str {
        match self {
            Executor::Local => "stopping running stages (SIGTERM, then SIGKILL)",
            Executor::Slurm(_) => "cancelling the run's Slurm jobs (scancel)",
        }
    }

    /// Whether stages lease GPUs of this machine (`--gpus`) rather than get them from a cluster.
    pub fn leases_local_gpus(&self) -> bool {
        matches!(self, Executor::Local)
    }

    /// The device of a stage that asks for `wanted` GPUs and holds the `leased` local ids.
    pub fn placement(&self, wanted: u32, leased: &[u32]) -> Placement {
        match self {
            Executor::Local => Placement {
                device: if leased.is_empty() { "cpu" } else { "cuda:0" }.to_string(),
                visible_devices: Some(
                    leased
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            },
            Executor::Slurm(_) => Placement::on_cluster(wanted),
        }
    }
}
