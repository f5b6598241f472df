//! Job states as `squeue` and `sacct` print them, and the parsing of their batched replies.

use std::collections::BTreeMap;

/// A Slurm job id.
pub type JobId = u64;

/// A job's state (Slurm's names); the ones a stage waits through and the final ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting, starting, running, being requeued or finishing: the job is not over.
    Active(String),
    /// Exit status 0.
    Completed,
    /// Non-zero exit status.
    Failed,
    /// `scancel` (by this run or by someone else).
    Cancelled,
    /// Reached its time limit.
    Timeout,
    /// Another final state: NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE.
    Ended(String),
}

impl JobState {
    /// Reads a state as printed (`RUNNING`, `CANCELLED by 0`, `FAILED`).
    pub fn parse(text: &str) -> JobState {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+')
            .to_ascii_uppercase();
        match word.as_str() {
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "CANCELLED" => JobState::Cancelled,
            "TIMEOUT" => JobState::Timeout,
            "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "DEADLINE" => JobState::Ended(word),
            // PREEMPTED included: jobs are submitted with --requeue, so Slurm runs them again.
            _ => JobState::Active(word),
        }
    }

    /// Whether the job is over.
    pub fn is_final(&self) -> bool {
        !matches!(self, JobState::Active(_))
    }

    /// Slurm's name of the state.
    pub fn name(&self) -> &str {
        match self {
            JobState::Active(name) | JobState::Ended(name) => name,
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Timeout => "TIMEOUT",
        }
    }
}

/// What one query said about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Its state.
    pub state: JobState,
    /// Its exit status, when the reply has it.
    pub exit_code: Option<i32>,
}

/// Parses `squeue -h -o %i|%T` lines.
pub fn parse_squeue(text: &str) -> BTreeMap<JobId, JobInfo> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once('|')?;
            let info = JobInfo {
                state: JobState::parse(state),
                exit_code: None,
            };
            Some((id.trim().parse().ok()?, info))
        })
        .collect()
}

/// Parses `sacct -n -P -X -o JobID,State,ExitCode` lines (`123|CANCELLED by 0|0:15`).
pub fn parse_sacct(text: &str) -> BTreeMap<JobId, JobInfo> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('|');
            let (id, state, exit) = (fields.next()?, fields.next()?, fields.next()?);
            let info = JobInfo {
                state: JobState::parse(state),
                exit_code: exit.split(':').next()?.parse().ok(),
            };
            Some((id.trim().parse().ok()?, info))
        })
        .collect()
}

/// The exit status in `scontrol show job -o` output (`ExitCode=3:0`).
pub fn parse_scontrol_exit_code(text: &str) -> Option<i32> {
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("ExitCode="))
        .and_then(|code| code.split(':').next())
        .and_then(|code| code.parse().ok())
}

/// The `RunTime=[D-]HH:MM:SS` field of `scontrol show job -o`, in seconds.
pub fn parse_scontrol_run_time(text: &str) -> Option<f64> {
    let field = text
        .split_whitespace()
        .find_map(|field| field.strip_prefix("RunTime="))?;
    let (days, clock) = match field.split_once('-') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, field),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else { return None };
    Some((((days * 24 + h) * 60 + m) * 60 + s) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_times_parse_with_and_without_days() {
        let line = "JobId=7 JobName=x JobState=COMPLETED RunTime=00:00:03 TimeLimit=00:05:00";
        assert_eq!(parse_scontrol_run_time(line), Some(3.0));
        assert_eq!(
            parse_scontrol_run_time("RunTime=2-01:02:03"),
            Some(176_523.0)
        );
        assert_eq!(parse_scontrol_run_time("RunTime=Unknown"), None);
        assert_eq!(parse_scontrol_run_time("JobState=PENDING"), None);
    }

    #[test]
    fn replies_parse_into_states() {
        let squeue = parse_squeue("1|COMPLETED\n2|RUNNING\n3|FAILED\ngarbage\n");
        assert_eq!(squeue[&1].state, JobState::Completed);
        assert_eq!(squeue[&2].state, JobState::Active("RUNNING".into()));
        assert!(!squeue[&2].state.is_final());
        assert!(squeue[&3].state.is_final());
        assert_eq!(squeue.len(), 3);

        let sacct = parse_sacct("7|CANCELLED by 0|0:15\n8|FAILED|3:0\n9|PENDING|0:0\n");
        assert_eq!(sacct[&7].state, JobState::Cancelled);
        assert_eq!(sacct[&8].exit_code, Some(3));
        assert_eq!(sacct[&9].state.name(), "PENDING");
        assert!(parse_sacct("").is_empty());

        assert_eq!(
            parse_scontrol_exit_code("JobId=4 JobState=FAILED Restarts=0 ExitCode=3:0 Foo=1"),
            Some(3)
        );
        assert_eq!(
            JobState::parse("OUT_OF_MEMORY"),
            JobState::Ended("OUT_OF_MEMORY".into())
        );
    }
}
