//! Reattaching to detached runs (`rsfm status`): one state query for all their jobs not yet
//! ingested, then, in submission order, each finished job into the store with the functions the
//! attached path uses (its events from the stage log as metric rows and curves, the final metrics
//! of its cache entry, one `stage_finished` transaction). A job that Slurm cancelled because a
//! stage it needs failed (`--kill-on-invalid-dep`) is skipped, with that stage named.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::super::states::{JobId, JobInfo, JobState};
use super::super::tail::{last_lines, LogTail};
use super::spec::{self, JobEnd};
use crate::cache::Cache;
use crate::scheduler::stage_task::{cached_metrics, event_metrics, merge_final_metrics, succeeded};
use crate::store::{DetachedJob, StageOutcome, StageRecord, StageStatus, Store};

/// One stage of a detached run as `rsfm status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    /// `experiment/stage@matrix`.
    pub stage: String,
    /// Its key.
    pub key: String,
    /// Its Slurm job.
    pub job_id: JobId,
    /// `succeeded`, `failed`, `skipped`, `interrupted`, `cancelled`, or while the job is not
    /// over, Slurm's state in lower case (`pending`, `running`), `unknown` when Slurm did not say.
    pub state: String,
    /// Why it failed or was skipped, or what a pending job waits for.
    pub reason: Option<String>,
}

/// A detached run's stages.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run id.
    pub run: String,
    /// Its stages in submission order.
    pub stages: Vec<StageView>,
}

/// Asks Slurm once for the jobs of `runs` not yet ingested, ingests those that ended, and
/// returns the runs' stages.
pub async fn reattach(
    store: &Store,
    results_dir: &Path,
    runs: &[String],
) -> anyhow::Result<Vec<RunView>> {
    let mut all = Vec::new();
    for run in runs {
        let jobs = store.detached_jobs(run).await?.unwrap_or_default();
        all.push((run.clone(), jobs));
    }
    let queued: Vec<JobId> = all
        .iter()
        .flat_map(|(_, jobs)| jobs.iter().filter(|j| j.is_queued()).map(|j| j.job_id))
        .collect();
    let states = super::super::states_now(&queued).await;
    let cache = Cache::open(results_dir)?;
    let mut views = Vec::new();
    for (run, jobs) in all {
        let mut ended: HashMap<String, (String, JobId, String)> = HashMap::new();
        let mut stages = Vec::new();
        for job in &jobs {
            let view = if job.is_queued() {
                follow(store, &cache, job, states.get(&job.job_id), &ended).await?
            } else {
                StageView {
                    stage: job.stage.clone(),
                    key: job.stage_key.clone(),
                    job_id: job.job_id,
                    state: job.state.clone(),
                    reason: job.reason.clone(),
                }
            };
            ended.insert(
                job.stage_key.clone(),
                (job.stage.clone(), job.job_id, view.state.clone()),
            );
            stages.push(view);
        }
        views.push(RunView { run, stages });
    }
    Ok(views)
}

/// The run's stages seen so far, by key: their name, job and state.
type Ended = HashMap<String, (String, JobId, String)>;

/// The view of queued `job` whose state Slurm gives as `info`; a job that ended is ingested.
async fn follow(
    store: &Store,
    cache: &Cache,
    job: &DetachedJob,
    info: Option<&JobInfo>,
    ended: &Ended,
) -> anyhow::Result<StageView> {
    let work = Path::new(&job.work_dir);
    let mut view = StageView {
        stage: job.stage.clone(),
        key: job.stage_key.clone(),
        job_id: job.job_id,
        state: "unknown".into(),
        reason: None,
    };
    // Slurm forgets a finished job after `MinJobAge` (without accounting): the job's end file,
    // written as it ends, says how it ended.
    let forgotten;
    let info = match (info, spec::read_end(work)) {
        (Some(info), _) => info,
        (None, Some(end)) => {
            forgotten = JobInfo {
                state: if end.committed {
                    JobState::Completed
                } else {
                    JobState::Failed
                },
                exit_code: None,
            };
            &forgotten
        }
        (None, None) => return Ok(view),
    };
    let (state, reason) = match &info.state {
        JobState::Active(name) => {
            view.state = name.to_ascii_lowercase();
            view.reason = waits_for(job, ended);
            return Ok(view);
        }
        JobState::Completed => match spec::read_end(work) {
            Some(end) if end.committed => {
                ingest_success(store, cache, job, &end).await?;
                (StageStatus::Succeeded, None)
            }
            end => {
                let reason = end.and_then(|e| e.error).unwrap_or_else(|| {
                    format!("Slurm job {} ended without a cache entry", job.job_id)
                });
                ingest_failure(store, job, StageStatus::Failed, &reason).await?;
                (StageStatus::Failed, Some(reason))
            }
        },
        JobState::Cancelled => match failed_need(job, ended) {
            Some(reason) => (StageStatus::Skipped, Some(reason)),
            None => {
                let reason = format!("Slurm job {} was cancelled", job.job_id);
                ingest_failure(store, job, StageStatus::Interrupted, &reason).await?;
                (StageStatus::Interrupted, Some(reason))
            }
        },
        other => {
            let said = spec::read_end(work).and_then(|e| e.error);
            let code = info
                .exit_code
                .map(|c| format!(", exit status {c}"))
                .unwrap_or_default();
            let reason = match said {
                Some(error) => format!(
                    "Slurm job {} ended {}{code}: {error}",
                    job.job_id,
                    other.name()
                ),
                None => format!("Slurm job {} ended {}{code}", job.job_id, other.name()),
            };
            ingest_failure(store, job, StageStatus::Failed, &reason).await?;
            (StageStatus::Failed, Some(reason))
        }
    };
    store
        .detached_job_ended(
            &job.run_id,
            &job.stage_key,
            state.as_str(),
            reason.as_deref(),
        )
        .await?;
    view.state = state.as_str().to_string();
    view.reason = reason;
    Ok(view)
}

/// The first stage `job` needs that did not succeed, said as the reason it was skipped.
fn failed_need(job: &DetachedJob, ended: &Ended) -> Option<String> {
    job.needs.iter().find_map(|key| {
        let (stage, id, state) = ended.get(key)?;
        ["failed", "skipped", "interrupted", "cancelled"]
            .contains(&state.as_str())
            .then(|| {
                format!(
                    "needs {stage}, which {} (Slurm job {id}); Slurm cancelled this job",
                    past(state)
                )
            })
    })
}

/// What a pending `job` waits for: the jobs of the stages it needs that have not succeeded.
fn waits_for(job: &DetachedJob, ended: &Ended) -> Option<String> {
    let waiting: Vec<String> = job
        .needs
        .iter()
        .filter_map(|key| ended.get(key))
        .filter(|(_, _, state)| state != StageStatus::Succeeded.as_str())
        .map(|(stage, id, _)| format!("{stage} (job {id})"))
        .collect();
    (!waiting.is_empty()).then(|| format!("waits for {}", waiting.join(", ")))
}

/// A state as a verb phrase: `failed`, `was skipped`, ...
fn past(state: &str) -> String {
    match state {
        "failed" => "failed".into(),
        "interrupted" | "skipped" | "cancelled" => format!("was {state}"),
        other => format!("is {other}"),
    }
}

/// The stage's record, its attempt started once per start of the job (a requeued job's second
/// start is the record's next attempt).
async fn start_record(store: &Store, job: &DetachedJob) -> anyhow::Result<()> {
    let record: StageRecord = serde_json::from_str(&job.record)?;
    for _ in 0..spec::starts(Path::new(&job.work_dir)).max(1) {
        store.stage_started(&record).await?;
    }
    Ok(())
}

/// A committed stage into the store: its events since the job was submitted (one curve over
/// every start) and its entry's final metrics and artifacts.
async fn ingest_success(
    store: &Store,
    cache: &Cache,
    job: &DetachedJob,
    end: &JobEnd,
) -> anyhow::Result<()> {
    let entry = cache.lookup(&job.stage_key).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: Slurm job {} committed no valid cache entry",
            job.stage,
            job.job_id
        )
    })?;
    let log = Path::new(&job.work_dir).join("stage.log");
    let mut metrics: Vec<_> = LogTail::from_offset(&log, job.log_offset)
        .read_events()
        .iter()
        .flat_map(event_metrics)
        .collect();
    merge_final_metrics(&mut metrics, cached_metrics(&entry.dir)?);
    start_record(store, job).await?;
    let outcome = succeeded(&entry, metrics, end.duration_s, end.commit_s);
    store.stage_finished(&job.stage_key, &outcome).await
}

/// A stage that failed or was interrupted into the store, with the log's last lines (nothing is
/// written for a job that never started).
async fn ingest_failure(
    store: &Store,
    job: &DetachedJob,
    status: StageStatus,
    reason: &str,
) -> anyhow::Result<()> {
    let work = Path::new(&job.work_dir);
    if spec::starts(work) == 0 {
        return Ok(());
    }
    start_record(store, job).await?;
    let tail = last_lines(&work.join("stage.log"));
    let outcome = StageOutcome {
        status,
        error: Some(reason.to_string()),
        stderr_tail: (!tail.is_empty()).then_some(tail),
        metrics: Vec::new(),
        artifacts: Vec::new(),
        cache_dir: None,
        duration_s: spec::read_end(work).map_or(0.0, |e| e.duration_s),
        commit_s: None,
    };
    store.stage_finished(&job.stage_key, &outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(needs: &[&str]) -> DetachedJob {
        DetachedJob {
            run_id: "detach-1".into(),
            position: 2,
            stage_key: "c".into(),
            stage: "chain/c".into(),
            job_id: 3,
            needs: needs.iter().map(|n| n.to_string()).collect(),
            work_dir: "/r/work/c".into(),
            log_offset: 0,
            record: String::new(),
            state: crate::store::QUEUED.into(),
            reason: None,
        }
    }

    #[test]
    fn a_cancelled_dependent_names_the_first_stage_it_needs_that_did_not_succeed() {
        let mut seen: Ended = HashMap::new();
        seen.insert("a".into(), ("chain/a".into(), 1, "succeeded".into()));
        seen.insert("b".into(), ("chain/b".into(), 2, "skipped".into()));
        assert_eq!(
            failed_need(&job(&["a", "b"]), &seen).as_deref(),
            Some("needs chain/b, which was skipped (Slurm job 2); Slurm cancelled this job")
        );
        // A cached need (not in the run) or one still pending is no reason to skip.
        seen.insert("b".into(), ("chain/b".into(), 2, "pending".into()));
        assert_eq!(failed_need(&job(&["a", "b", "cached"]), &seen), None);
        assert_eq!(
            waits_for(&job(&["a", "b"]), &seen).as_deref(),
            Some("waits for chain/b (job 2)")
        );
    }
}
