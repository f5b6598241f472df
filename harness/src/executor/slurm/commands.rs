//! Slurm's client commands (`scontrol`, `sbatch`, `squeue`, `sacct`, `scancel`), each with a
//! time limit and in its own process group, so a Ctrl-C meant for rsfm does not kill a
//! submission half-way.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use super::super::own_process_group;
use super::states::{self, JobId, JobInfo};

/// Longest wait for one client command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How the cluster reports job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// `sacct` (slurmdbd runs).
    Sacct,
    /// `squeue -t all` (accounting storage is disabled; finished jobs stay for `MinJobAge`).
    Squeue,
}

impl Accounting {
    /// The command that reads states.
    pub fn command(self) -> &'static str {
        match self {
            Accounting::Sacct => "sacct",
            Accounting::Squeue => "squeue",
        }
    }
}

/// Runs `program args`; its stdout on exit status 0, else an error with its stderr.
pub async fn run(program: &str, args: &[String]) -> anyhow::Result<String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A submission outlives rsfm anyway: let it finish rather than leave a job half-known.
    own_process_group(&mut command, false);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, command.output())
        .await
        .with_context(|| format!("`{program}` did not answer within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("cannot run `{program}` (is Slurm's client installed?)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = [stderr.trim(), stdout.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    anyhow::bail!("`{program} {}` failed: {said}", args.join(" "))
}

/// `scontrol show config`: whether the cluster keeps accounting.
pub async fn accounting() -> anyhow::Result<Accounting> {
    let config = run("scontrol", &["show".into(), "config".into()]).await?;
    let disabled = config.lines().any(|line| {
        line.trim_start().starts_with("AccountingStorageType") && line.contains("/none")
    });
    Ok(if disabled {
        Accounting::Squeue
    } else {
        Accounting::Sacct
    })
}

/// Submits `script` with `flags`; the job id.
pub async fn sbatch(flags: &[String], script: &Path) -> anyhow::Result<JobId> {
    let mut args = vec!["--parsable".to_string()];
    args.extend_from_slice(flags);
    args.push(script.display().to_string());
    let stdout = run("sbatch", &args).await?;
    let id = stdout.trim().split(';').next().unwrap_or_default();
    id.parse()
        .with_context(|| format!("sbatch printed `{}`, not a job id", stdout.trim()))
}

/// The states of `jobs` in one call; an empty map when the reply lists none of them.
pub async fn job_states(
    accounting: Accounting,
    jobs: &[JobId],
) -> anyhow::Result<BTreeMap<JobId, JobInfo>> {
    let ids = jobs
        .iter()
        .map(JobId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<String> = match accounting {
        Accounting::Squeue => ["-h", "-t", "all", "-o", "%i|%T", "-j", &ids]
            .map(String::from)
            .to_vec(),
        Accounting::Sacct => ["-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", &ids]
            .map(String::from)
            .to_vec(),
    };
    let stdout = run(accounting.command(), &args).await?;
    Ok(match accounting {
        Accounting::Squeue => states::parse_squeue(&stdout),
        Accounting::Sacct => states::parse_sacct(&stdout),
    })
}

/// The exit status of a finished job, from `scontrol show job` (`None` once Slurm forgot it).
pub async fn exit_code(job: JobId) -> Option<i32> {
    let args = ["show", "job", "-o", &job.to_string()].map(String::from);
    let stdout = run("scontrol", &args).await.ok()?;
    states::parse_scontrol_exit_code(&stdout)
}

/// The seconds a job ran (its last run, after a requeue), from `scontrol show job`; `None` once
/// Slurm forgot it.
pub async fn run_time(job: JobId) -> Option<f64> {
    let args = ["show", "job", "-o", &job.to_string()].map(String::from);
    let stdout = run("scontrol", &args).await.ok()?;
    states::parse_scontrol_run_time(&stdout)
}

/// Why a pending job waits, as `squeue` says it (`%r`, e.g. "Nodes required for job are DOWN,
/// DRAINED or reserved ..."); `None` when Slurm does not answer.
pub async fn pending_reason(job: JobId) -> Option<String> {
    let args = ["-h", "-t", "all", "-o", "%r", "-j", &job.to_string()].map(String::from);
    let stdout = run("squeue", &args).await.ok()?;
    Some(stdout.trim().to_string()).filter(|r| !r.is_empty())
}

/// Cancels `jobs`.
pub async fn scancel(jobs: &[JobId]) -> anyhow::Result<()> {
    let args: Vec<String> = jobs.iter().map(JobId::to_string).collect();
    run("scancel", &args).await.map(drop)
}
