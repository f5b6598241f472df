//! `rsfm stage-job SPEC`, the body of a detached job: takes the key's lock, runs the stage's
//! script (the command line `rsfm run --backend slurm` submits), then does what the scheduler
//! does after a stage process ends: the tamper check of its inputs and the commit of its build
//! dir into the cache. It writes `detach-end.json` and never opens the store. A stage stopped at
//! a checkpoint (exit status 3, e.g. on the time-limit signal) has its job requeued, at most
//! [`MAX_RESUMES`] times, as the scheduler starts such a stage again.

use std::path::Path;
use std::time::Instant;

use super::super::commands;
use super::spec::{self, JobEnd, JobSpec, JOB_END_FILE, STARTS_FILE};
use crate::cache::Cache;
use crate::executor::{MAX_RESUMES, STOPPED_AT_CHECKPOINT};
use crate::lock::TryLock;
use crate::scheduler::stage_task::{self, BuildOutput, InputSnapshots};

/// Runs the job of `spec_path`; the exit status the job ends with (0: committed; the stage's
/// own status when it failed, so that 3, stopped at a checkpoint, stays 3; 1 otherwise).
pub async fn run(spec_path: &Path) -> anyhow::Result<i32> {
    let spec = JobSpec::read(spec_path)?;
    let work = spec_path.parent().unwrap_or(Path::new("."));
    // A requeued job's earlier start may have left an end file: this start writes its own.
    let _ = std::fs::remove_file(work.join(JOB_END_FILE));
    let starts = spec::starts(work) + 1;
    fs_err::write(work.join(STARTS_FILE), starts.to_string())?;
    let cache = Cache::open(&spec.results_dir)?;
    let key = &spec.key.key;
    let _lock = match crate::lock::try_lock(&spec.results_dir, key)? {
        TryLock::Acquired(lock) => lock,
        TryLock::Held(owner) => {
            let owner = crate::lock::holder(owner.as_ref());
            return end(work, None, format!("{owner} runs the same key"), 0.0);
        }
    };
    if cache.lookup(key).is_some() {
        let done = JobEnd {
            committed: true,
            error: None,
            duration_s: 0.0,
            commit_s: None,
        };
        spec::write_json(&work.join(JOB_END_FILE), &done)?;
        return Ok(0);
    }
    if spec.out.exists() {
        fs_err::remove_dir_all(&spec.out)?;
    }
    fs_err::create_dir_all(&spec.out)?;
    stage_task::append_attempt_header(&spec.log, &spec.label, key, starts, starts, &spec.device)?;
    let untouched = InputSnapshots::take(&spec.inputs)?;
    let started = Instant::now();
    let status = run_stage_script(&spec.stage_script).await?;
    let duration_s = started.elapsed().as_secs_f64();
    if let Some(problem) = untouched.check(&cache)? {
        return end(work, Some(&spec.out), problem, duration_s);
    }
    if status == STOPPED_AT_CHECKPOINT && starts <= MAX_RESUMES {
        if let Some(job) = std::env::var("SLURM_JOB_ID").ok().filter(|j| !j.is_empty()) {
            // As an attached run submits such a stage again: the job goes back to the queue
            // (dependents keep waiting on it) and its next start resumes from the checkpoint.
            let _ = fs_err::remove_dir_all(&spec.out);
            stage_task::append_log_line(
                &spec.log,
                &format!("rsfm: stopped at a checkpoint; requeueing Slurm job {job} to resume ({starts}/{MAX_RESUMES})"),
            );
            commands::run("scontrol", &["requeue".to_string(), job]).await?;
            return Ok(status);
        }
    }
    if status != 0 {
        let _ = end(
            work,
            Some(&spec.out),
            format!("the stage exited with status {status}"),
            duration_s,
        );
        return Ok(status);
    }
    let build = BuildOutput {
        key: &spec.key,
        stage_json: &spec.stage_json,
        stage_name: &spec.stage_name,
        resolved_recipe: &spec.resolved_recipe,
        out: &spec.out,
    };
    let committing = Instant::now();
    match stage_task::commit_build(&cache, &build, &mut Vec::new()) {
        Ok(_) => {
            let done = JobEnd {
                committed: true,
                error: None,
                duration_s,
                commit_s: Some(committing.elapsed().as_secs_f64()),
            };
            spec::write_json(&work.join(JOB_END_FILE), &done)?;
            Ok(0)
        }
        Err(err) => end(work, Some(&spec.out), format!("{err:#}"), duration_s),
    }
}

/// Records a failure in the end file, removes the build dir and returns status 1.
fn end(work: &Path, out: Option<&Path>, error: String, duration_s: f64) -> anyhow::Result<i32> {
    if let Some(out) = out {
        let _ = fs_err::remove_dir_all(out);
    }
    tracing::error!("{error}");
    let failed = JobEnd {
        committed: false,
        error: Some(error),
        duration_s,
        commit_s: None,
    };
    spec::write_json(&work.join(JOB_END_FILE), &failed)?;
    Ok(1)
}

/// Runs `sh SCRIPT` with this job's stdout and stderr (the stage log); a SIGTERM that Slurm sends
/// this process (`--signal=B:TERM@…` before the time limit) is passed on, so the worker stops at
/// a checkpoint. Its exit status (128 + N for a signal N).
async fn run_stage_script(script: &Path) -> anyhow::Result<i32> {
    let mut child = tokio::process::Command::new("sh").arg(script).spawn()?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = sigterm.recv() => {
                if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                    // SAFETY: kill(2) with a pid this process started and has not reaped.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}
