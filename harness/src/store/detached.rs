//! Detached Slurm runs (`rsfm run --backend slurm --detach`): the run, and for each submitted
//! stage its job, the stages it needs, where its files are and where its ingest stands.

use anyhow::Context;
use serde::Serialize;
use sqlx::Row;

use super::Store;

/// A submitted stage of a detached run, as the run recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetachedJob {
    /// The run (`detach-<invocation id>`).
    pub run_id: String,
    /// Submission order within the run (every stage after the stages it needs).
    pub position: i64,
    /// The stage key.
    pub stage_key: String,
    /// `experiment/stage@matrix`.
    pub stage: String,
    /// The Slurm job id.
    pub job_id: u64,
    /// Keys of the stages of this run it needs.
    pub needs: Vec<String>,
    /// Its work dir.
    pub work_dir: String,
    /// The stage log's length when the job was submitted: its events come after.
    pub log_offset: u64,
    /// The stage's store record (JSON), written into `stages` when the job is ingested.
    #[serde(skip)]
    pub record: String,
    /// `queued` until ingested, then `succeeded`, `failed`, `skipped`, `interrupted` or
    /// `cancelled`.
    pub state: String,
    /// Why it failed, was skipped or cancelled.
    pub reason: Option<String>,
}

impl DetachedJob {
    /// Whether the job is not ingested yet.
    pub fn is_queued(&self) -> bool {
        self.state == QUEUED
    }
}

/// The state of a job that is not ingested yet.
pub const QUEUED: &str = "queued";

impl Store {
    /// Records detached run `run_id` of `invocation_id`.
    pub async fn record_detached_run(
        &self,
        run_id: &str,
        invocation_id: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO detached_runs (id, invocation_id, submitted_at) VALUES (?, ?, ?)")
            .bind(run_id)
            .bind(invocation_id)
            .bind(crate::time::now_rfc3339())
            .execute(self.writer()?)
            .await
            .with_context(|| self.context("recording the detached run"))?;
        Ok(())
    }

    /// Records one submitted stage of a detached run.
    pub async fn record_detached_job(&self, job: &DetachedJob) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO detached_jobs (run_id, position, stage_key, stage, job_id, needs, work_dir, log_offset, record, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&job.run_id)
        .bind(job.position)
        .bind(&job.stage_key)
        .bind(&job.stage)
        .bind(job.job_id as i64)
        .bind(serde_json::to_string(&job.needs)?)
        .bind(&job.work_dir)
        .bind(job.log_offset as i64)
        .bind(&job.record)
        .bind(&job.state)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("recording a detached job"))?;
        Ok(())
    }

    /// The ids of the detached runs, oldest first: all of them, or those with a job not yet
    /// ingested (`unfinished`).
    pub async fn detached_runs(&self, unfinished: bool) -> anyhow::Result<Vec<String>> {
        let sql = if unfinished {
            "SELECT id FROM detached_runs r WHERE EXISTS
               (SELECT 1 FROM detached_jobs j WHERE j.run_id = r.id AND j.state = 'queued')
             ORDER BY invocation_id"
        } else {
            "SELECT id FROM detached_runs ORDER BY invocation_id"
        };
        let rows = sqlx::query(sql)
            .fetch_all(self.reader())
            .await
            .with_context(|| self.context("listing detached runs"))?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// The jobs of detached run `run_id` in submission order; `None` when there is no such run.
    pub async fn detached_jobs(&self, run_id: &str) -> anyhow::Result<Option<Vec<DetachedJob>>> {
        let found = sqlx::query("SELECT 1 FROM detached_runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(self.reader())
            .await
            .with_context(|| self.context("reading a detached run"))?;
        if found.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT run_id, position, stage_key, stage, job_id, needs, work_dir, log_offset, record, state, reason
             FROM detached_jobs WHERE run_id = ? ORDER BY position",
        )
        .bind(run_id)
        .fetch_all(self.reader())
        .await
        .with_context(|| self.context("reading detached jobs"))?;
        rows.iter()
            .map(|row| {
                Ok(DetachedJob {
                    run_id: row.try_get("run_id")?,
                    position: row.try_get("position")?,
                    stage_key: row.try_get("stage_key")?,
                    stage: row.try_get("stage")?,
                    job_id: row.try_get::<i64, _>("job_id")? as u64,
                    needs: serde_json::from_str(&row.try_get::<String, _>("needs")?)?,
                    work_dir: row.try_get("work_dir")?,
                    log_offset: row.try_get::<i64, _>("log_offset")? as u64,
                    record: row.try_get("record")?,
                    state: row.try_get("state")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    /// Records where a job of a detached run ended (`state`, `reason`).
    pub async fn detached_job_ended(
        &self,
        run_id: &str,
        stage_key: &str,
        state: &str,
        reason: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE detached_jobs SET state = ?, reason = ?, ingested_at = ? WHERE run_id = ? AND stage_key = ?",
        )
        .bind(state)
        .bind(reason)
        .bind(crate::time::now_rfc3339())
        .bind(run_id)
        .bind(stage_key)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("recording the end of a detached job"))?;
        Ok(())
    }

    /// Records that `rsfm cancel` cancelled detached run `run_id`.
    pub async fn detached_run_cancelled(&self, run_id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE detached_runs SET cancelled_at = ? WHERE id = ?")
            .bind(crate::time::now_rfc3339())
            .bind(run_id)
            .execute(self.writer()?)
            .await
            .with_context(|| self.context("recording the cancel of a detached run"))?;
        Ok(())
    }
}
