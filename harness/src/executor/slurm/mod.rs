//! The Slurm backend: each ready stage becomes one `sbatch` job that runs the same command line
//! as the local executor, its output appended to the stage log. One poller asks for the states
//! of all the run's jobs per interval; each stage follows its job's state and tails its log for
//! the worker's events. Ctrl-C cancels the jobs (`scancel`); a job that Slurm requeues runs again
//! and the worker resumes from its work-dir checkpoint; a job whose worker stopped at a
//! checkpoint on SIGTERM (exit status 3, e.g. `--signal` before the time limit) ends
//! [`ProcessEnd::Stopped`], and the scheduler starts the stage again as it does for a local
//! process. The harness alone ingests results, as with the local executor.
//!
//! A data-parallel stage (`processes = N` or `gpus = N` per node, `nodes = M`) is one job of
//! M × N tasks (`--nodes=M --ntasks-per-node=N`): its batch script starts the ranks with
//! `srun`, each with PyTorch's rendezvous variables derived from Slurm's ([`script`]).

mod commands;
pub mod detach;
pub mod job_record;
mod poll;
pub mod preflight;
mod script;
pub mod settings;
pub mod states;
mod tail;

use std::path::Path;
use std::time::{Duration, Instant};

use rsfm_model::protocol::Event;
use tokio::sync::{watch, Mutex};

use super::{Finished, Invocation, ProcessEnd, STOPPED_AT_CHECKPOINT};
use crate::plan::PlannedStage;
use commands::Accounting;
use job_record::JobRecord;
use poll::Poller;
use settings::SlurmSettings;
use states::{JobId, JobInfo, JobState};
use tail::LogTail;

/// Time between two reads of a running job's log.
const LOG_TAIL_INTERVAL: Duration = Duration::from_millis(250);
/// Longest wait for a cancelled job to end before the stage is reported interrupted anyway.
const CANCEL_WAIT: Duration = Duration::from_secs(60);
/// Time without any state of a job before the run says so (it goes on waiting).
const UNKNOWN_WARNING: Duration = Duration::from_secs(120);
/// Attempts of one `sbatch` call that fails for a transient reason.
const SUBMIT_ATTEMPTS: u32 = 3;

/// Runs stages as Slurm jobs for one `rsfm run`.
pub struct SlurmExecutor {
    settings: SlurmSettings,
    accounting: Accounting,
    run_id: String,
    invocation_id: i64,
    poller: Poller,
    next_submit: Mutex<tokio::time::Instant>,
    submitted: std::sync::atomic::AtomicU64,
    started: Instant,
}

impl SlurmExecutor {
    /// Starts the backend for invocation `invocation_id`: reads how the cluster reports states
    /// and starts the poller.
    pub async fn start(settings: SlurmSettings, invocation_id: i64) -> anyhow::Result<Self> {
        let accounting = commands::accounting().await?;
        let poller = Poller::start(accounting, settings.poll_interval());
        Ok(SlurmExecutor {
            settings,
            accounting,
            run_id: format!("rsfm{invocation_id}.{}", std::process::id()),
            invocation_id,
            poller,
            next_submit: Mutex::new(tokio::time::Instant::now()),
            submitted: std::sync::atomic::AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// One line on the load this run put on the controller: jobs submitted, state queries.
    pub fn load_report(&self) -> String {
        let queries = self.poller.queries();
        let minutes = self.started.elapsed().as_secs_f64() / 60.0;
        format!(
            "slurm: {} jobs submitted; {queries} {} queries in {:.1} s ({:.1} per minute)",
            self.submitted.load(std::sync::atomic::Ordering::Relaxed),
            self.accounting.command(),
            minutes * 60.0,
            queries as f64 / minutes.max(1e-9)
        )
    }

    /// Runs `invocation` for `stage` as Slurm jobs until it ends or `cancel` turns true.
    pub async fn run(
        &self,
        stage: &PlannedStage,
        invocation: &Invocation,
        mut on_event: impl FnMut(Event) + Send,
        mut cancel: watch::Receiver<bool>,
    ) -> Finished {
        let work_dir = invocation.log_path.parent().unwrap_or(Path::new("."));
        let script_path = work_dir.join("slurm-job.sh");
        let script = script::batch_script(invocation, &stage.display_name());
        if let Err(err) = fs_err::write(&script_path, script) {
            return Finished::failure(format!("cannot write the batch script: {err}"));
        }
        let mut tail = LogTail::from_end(&invocation.log_path);
        tokio::select! {
            _ = self.wait_for_submit_slot() => {}
            _ = stopped(&mut cancel) => return self.finished(ProcessEnd::Interrupted, invocation),
        }
        // Not raced with Ctrl-C: a submission cut short could leave a job nobody follows;
        // a job submitted after Ctrl-C is cancelled at once by `follow`.
        let job = match self.submit(stage, invocation, &script_path).await {
            Ok(job) => job,
            Err(err) => return Finished::failure(format!("cannot submit the Slurm job: {err:#}")),
        };
        let record = JobRecord {
            job_id: job,
            invocation_id: self.invocation_id,
        };
        if let Err(err) = record.write(work_dir) {
            tracing::warn!("{err:#}");
        }
        self.poller.follow(job);
        let end = self
            .follow(
                job,
                &stage.display_name(),
                &mut tail,
                &mut on_event,
                &mut cancel,
            )
            .await;
        self.poller.forget(job);
        let run_s = commands::run_time(job).await;
        Finished {
            run_s,
            ..self.finished(end, invocation)
        }
    }

    fn finished(&self, end: ProcessEnd, invocation: &Invocation) -> Finished {
        let stderr_tail = match end {
            ProcessEnd::Success => String::new(),
            _ => tail::last_lines(&invocation.log_path),
        };
        // Slurm ends a job's leftover processes itself when the job step ends.
        Finished {
            end,
            stderr_tail,
            leftovers: None,
            run_s: None,
        }
    }

    /// `sbatch`, again after a transient failure (each retry waits for a submission slot).
    async fn submit(
        &self,
        stage: &PlannedStage,
        invocation: &Invocation,
        script: &Path,
    ) -> anyhow::Result<JobId> {
        let mut flags = vec![
            format!("--job-name={}:{}", stage.display_name(), self.run_id),
            format!("--output={}", invocation.log_path.display()),
            "--open-mode=append".to_string(),
            "--requeue".to_string(),
        ];
        flags.extend(self.settings.stage_flags(stage).into_iter().map(|f| f.flag));
        let mut attempt = 1;
        loop {
            match commands::sbatch(&flags, script).await {
                Ok(job) => {
                    self.submitted
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(job);
                }
                Err(err) if attempt < SUBMIT_ATTEMPTS && is_transient(&format!("{err:#}")) => {
                    tracing::warn!("sbatch failed ({err:#}); trying again");
                    tokio::time::sleep(Duration::from_secs(2 * u64::from(attempt))).await;
                    self.wait_for_submit_slot().await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits for the next submission slot (`submit_rate`).
    async fn wait_for_submit_slot(&self) {
        let slot = {
            let mut next = self.next_submit.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.settings.submit_interval();
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Follows `job` (of stage `label`) to its end: its log's events to `on_event`, `scancel`
    /// on cancel, a warning when Slurm puts it back in the queue after it ran.
    async fn follow(
        &self,
        job: JobId,
        label: &str,
        tail: &mut LogTail,
        on_event: &mut (impl FnMut(Event) + Send),
        cancel: &mut watch::Receiver<bool>,
    ) -> ProcessEnd {
        let mut states = self.poller.subscribe();
        let mut ticker = tokio::time::interval(LOG_TAIL_INTERVAL);
        let mut cancelled: Option<Instant> = None;
        let submitted = Instant::now();
        let mut known = false;
        let mut ran = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    tail.read_events().into_iter().for_each(&mut *on_event);
                    if !known && submitted.elapsed() > UNKNOWN_WARNING {
                        known = true;
                        tracing::warn!(
                            "{} has not reported Slurm job {job} for {UNKNOWN_WARNING:?}; still asking (Ctrl-C cancels it)",
                            self.accounting.command()
                        );
                    }
                    if cancelled.is_some_and(|at| at.elapsed() > CANCEL_WAIT) {
                        return ProcessEnd::Interrupted;
                    }
                }
                changed = states.changed() => {
                    if changed.is_err() {
                        return ProcessEnd::Failure("the Slurm poller stopped".into());
                    }
                    let info = states.borrow_and_update().get(&job).cloned();
                    known |= info.is_some();
                    if let Some(JobInfo { state: JobState::Active(name), .. }) = &info {
                        if name == "RUNNING" {
                            ran = true;
                        } else if ran && (name == "PENDING" || name.starts_with("REQUEUE")) {
                            ran = false;
                            self.warn_requeued(job, label).await;
                        }
                    }
                    if let Some(info) = info.filter(|i| i.state.is_final()) {
                        tail.read_events().into_iter().for_each(&mut *on_event);
                        return self.job_end(job, info, cancelled.is_some()).await;
                    }
                }
                _ = stopped(cancel), if cancelled.is_none() => {
                    cancelled = Some(Instant::now());
                    if let Err(err) = commands::scancel(&[job]).await {
                        tracing::warn!("cannot cancel Slurm job {job}: {err:#}");
                    }
                }
            }
        }
    }

    /// Says that `job` went back to the queue after it ran (a failed node, preemption,
    /// `scontrol requeue`), and what it waits for now.
    async fn warn_requeued(&self, job: JobId, label: &str) {
        let reason = commands::pending_reason(job)
            .await
            .unwrap_or_else(|| "Slurm gives no reason".into());
        tracing::warn!(
            "{label}: Slurm requeued job {job} after it ran (the stage log says why); it resumes from its last checkpoint when it runs again; waiting: {reason}"
        );
    }

    async fn job_end(&self, job: JobId, info: JobInfo, cancelled: bool) -> ProcessEnd {
        if cancelled {
            return ProcessEnd::Interrupted;
        }
        match info.state {
            JobState::Completed => ProcessEnd::Success,
            JobState::Cancelled => ProcessEnd::Interrupted,
            JobState::Failed => {
                let code = match info.exit_code {
                    Some(code) => Some(code),
                    None => commands::exit_code(job).await,
                };
                match code {
                    Some(STOPPED_AT_CHECKPOINT) => ProcessEnd::Stopped,
                    Some(code) => {
                        ProcessEnd::Failure(format!("Slurm job {job} exited with status {code}"))
                    }
                    None => ProcessEnd::Failure(format!("Slurm job {job} failed")),
                }
            }
            JobState::Timeout => {
                ProcessEnd::Failure(format!("Slurm job {job} reached its time limit"))
            }
            other => ProcessEnd::Failure(format!("Slurm job {job} ended {}", other.name())),
        }
    }
}

/// Returns once `cancel` turns true (or its sender is gone).
async fn stopped(cancel: &mut watch::Receiver<bool>) {
    let _ = cancel.wait_for(|c| *c).await;
}

/// The states of `jobs` now, for `rsfm status`; jobs Slurm does not answer for are left out.
pub async fn states_now(jobs: &[JobId]) -> std::collections::BTreeMap<JobId, JobInfo> {
    if jobs.is_empty() {
        return Default::default();
    }
    let Ok(accounting) = commands::accounting().await else {
        return Default::default();
    };
    commands::job_states(accounting, jobs)
        .await
        .unwrap_or_default()
}

/// Whether an `sbatch` failure is worth another try (a busy controller, not a bad flag).
fn is_transient(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["timed out", "temporarily", "try again", "resource busy"]
        .iter()
        .any(|hint| message.contains(hint))
}
