//! Stage lifecycle: started → finished (or cached), stale runs, and listing for `rsfm status`.

use anyhow::Context;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{MetricRow, StageFilter, StageOutcome, StageRecord, StageRow, StageStatus, Store};

impl Store {
    /// Records that a stage starts an attempt: inserts or updates its row with status `running`,
    /// one more attempt, and clears the previous attempt's end, error and cache entry.
    pub async fn stage_started(&self, rec: &StageRecord) -> anyhow::Result<()> {
        let upsert = sqlx::query(
            "INSERT INTO stages (key, name, kind, experiment, model, task, dataset, fraction, matrix, params, seed,
                                 split, protocol, status, attempts, started_at, last_used_at, host, device, invocation_id, log_path,
                                 work_dir)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET
                 name = excluded.name, kind = excluded.kind, experiment = excluded.experiment,
                 model = excluded.model, task = excluded.task, dataset = excluded.dataset,
                 fraction = excluded.fraction, matrix = excluded.matrix, params = excluded.params,
                 seed = excluded.seed, split = excluded.split, protocol = excluded.protocol, status = 'running', attempts = stages.attempts + 1,
                 started_at = excluded.started_at, last_used_at = excluded.last_used_at, removed_at = NULL,
                 finished_at = NULL, duration_s = NULL, host = excluded.host, device = excluded.device,
                 invocation_id = excluded.invocation_id, error = NULL, stderr_tail = NULL, dismissed_at = NULL,
                 log_path = excluded.log_path, work_dir = excluded.work_dir, cache_dir = NULL",
        );
        bind_stage_record(upsert, rec)
            .execute(self.writer()?)
            .await
            .with_context(|| self.context(&format!("recording the start of stage {}", rec.name)))?;
        Ok(())
    }

    /// Records the end of the running attempt of stage `key`, in one transaction: its status,
    /// end time, error and stderr tail, its metrics and artifacts, and a `stage_runs` history row.
    /// A succeeded (or cached) outcome replaces the stage's metrics (but for the scores
    /// `rsfm ingest` read from an evaluation server) and artifacts; any other outcome adds its
    /// rows to the existing ones.
    pub async fn stage_finished(&self, key: &str, outcome: &StageOutcome) -> anyhow::Result<()> {
        let mut tx = self
            .writer()?
            .begin()
            .await
            .with_context(|| self.context("starting a transaction"))?;
        let now = crate::time::now_rfc3339();
        let current = sqlx::query(
            "SELECT attempts, started_at, invocation_id, host, device FROM stages WHERE key = ?",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .with_context(|| {
            format!(
                "{}: stage {key} finished but was never recorded as started",
                self.path.display()
            )
        })?;
        sqlx::query(
            "UPDATE stages SET status = ?, finished_at = ?, last_used_at = ?, duration_s = ?, commit_s = ?, error = ?,
                               stderr_tail = ?, cache_dir = ?
             WHERE key = ?",
        )
        .bind(outcome.status.as_str())
        .bind(&now)
        .bind(&now)
        .bind(outcome.duration_s)
        .bind(outcome.commit_s)
        .bind(&outcome.error)
        .bind(&outcome.stderr_tail)
        .bind(&outcome.cache_dir)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        if matches!(outcome.status, StageStatus::Succeeded | StageStatus::Cached) {
            // Scores an evaluation server sent back for this stage are not the worker's: kept.
            sqlx::query(
                "DELETE FROM metrics WHERE stage_key = ?1 AND NOT (step IS NULL AND name IN (
                     SELECT sc.name FROM server_scores sc JOIN submissions su ON su.id = sc.submission_id
                     WHERE su.stage_key = ?1))",
            )
                .bind(key)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM artifacts WHERE stage_key = ?")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        for metric in &outcome.metrics {
            sqlx::query(
                "INSERT OR REPLACE INTO metrics (stage_key, name, value, step) VALUES (?, ?, ?, ?)",
            )
            .bind(key)
            .bind(&metric.name)
            .bind(metric.value)
            .bind(metric.step)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing metric {} of stage {key}", metric.name))?;
        }
        for artifact in &outcome.artifacts {
            sqlx::query("INSERT OR REPLACE INTO artifacts (stage_key, path, size, sha256) VALUES (?, ?, ?, ?)")
                .bind(key)
                .bind(&artifact.path)
                .bind(artifact.size)
                .bind(&artifact.sha256)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("storing artifact {} of stage {key}", artifact.path))?;
        }
        sqlx::query(
            "INSERT INTO stage_runs (stage_key, invocation_id, attempt, status, started_at, finished_at, duration_s,
                                     commit_s, host, device, error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key)
        .bind(current.try_get::<Option<i64>, _>("invocation_id")?)
        .bind(current.try_get::<i64, _>("attempts")?)
        .bind(outcome.status.as_str())
        .bind(current.try_get::<Option<String>, _>("started_at")?)
        .bind(&now)
        .bind(outcome.duration_s)
        .bind(outcome.commit_s)
        .bind(current.try_get::<Option<String>, _>("host")?)
        .bind(current.try_get::<Option<String>, _>("device")?)
        .bind(&outcome.error)
        .execute(&mut *tx)
        .await?;
        tx.commit()
            .await
            .with_context(|| self.context(&format!("recording the end of stage {key}")))?;
        Ok(())
    }

    /// Adds the final metrics (`step` NULL) of a cached stage that the store lacks, e.g. after a
    /// run was killed between committing the entry and recording it; rows it has are kept.
    pub async fn restore_final_metrics(
        &self,
        key: &str,
        metrics: &[MetricRow],
    ) -> anyhow::Result<()> {
        let mut tx = self.writer()?.begin().await?;
        for metric in metrics.iter().filter(|m| m.step.is_none()) {
            sqlx::query(
                "INSERT OR IGNORE INTO metrics (stage_key, name, value, step) VALUES (?, ?, ?, NULL)",
            )
            .bind(key)
            .bind(&metric.name)
            .bind(metric.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit()
            .await
            .with_context(|| self.context(&format!("restoring the metrics of stage {key}")))?;
        Ok(())
    }

    /// Records that a stage was found in the cache by this invocation: its last use is now and
    /// its entry exists. Its status keeps saying how its result was produced (`succeeded`), and
    /// the times, attempts, metrics and artifacts of the run that produced the entry are kept; a
    /// stage the store has no record of is inserted as `cached`.
    pub async fn mark_cached(&self, rec: &StageRecord) -> anyhow::Result<()> {
        let upsert = sqlx::query(
            "INSERT INTO stages (key, name, kind, experiment, model, task, dataset, fraction, matrix, params, seed,
                                 split, protocol, status, attempts, finished_at, last_used_at, host, device, invocation_id, log_path,
                                 work_dir)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'cached', 0, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET
                 name = excluded.name, kind = excluded.kind, experiment = excluded.experiment,
                 model = excluded.model, task = excluded.task, dataset = excluded.dataset,
                 fraction = excluded.fraction, matrix = excluded.matrix, params = excluded.params,
                 seed = excluded.seed, split = excluded.split, protocol = excluded.protocol, last_used_at = excluded.last_used_at, removed_at = NULL,
                 status = CASE WHEN stages.status = 'succeeded' THEN 'succeeded' ELSE 'cached' END,
                 error = NULL, stderr_tail = NULL",
        );
        bind_stage_record(upsert, rec)
            .execute(self.writer()?)
            .await
            .with_context(|| self.context(&format!("recording stage {} as cached", rec.name)))?;
        Ok(())
    }

    /// Marks `running` stages whose invocation can no longer be running as `interrupted`: its
    /// process is gone from this host (or the host rebooted since), it recorded its end, or it is
    /// unknown. Stages running on other hosts are left alone. Returns how many were marked.
    pub async fn mark_stale_running_interrupted(&self) -> anyhow::Result<u64> {
        let host = crate::process::host_name();
        let boot_id = crate::process::boot_id();
        let running = sqlx::query(
            "SELECT s.key, s.invocation_id, i.id AS found, i.host, i.pid, i.boot_id, i.finished_at
             FROM stages s LEFT JOIN invocations i ON i.id = s.invocation_id
             WHERE s.status = 'running'",
        )
        .fetch_all(self.writer()?)
        .await
        .with_context(|| self.context("listing running stages"))?;
        let mut stale: Vec<(String, String)> = Vec::new();
        let mut dead_invocations: Vec<i64> = Vec::new();
        for row in &running {
            let key: String = row.try_get("key")?;
            let reason = if row.try_get::<Option<i64>, _>("found")?.is_none() {
                Some("its invocation is not recorded".to_string())
            } else if row.try_get::<Option<String>, _>("finished_at")?.is_some() {
                Some("its invocation ended without recording the stage's end".to_string())
            } else {
                let inv_host: String = row.try_get("host")?;
                let pid: i64 = row.try_get("pid")?;
                let inv_boot: String = row.try_get("boot_id")?;
                let gone = inv_host == host
                    && ((!inv_boot.is_empty() && inv_boot != boot_id)
                        || !i32::try_from(pid).is_ok_and(crate::process::pid_is_alive));
                gone.then(|| {
                    dead_invocations.extend(
                        row.try_get::<Option<i64>, _>("invocation_id")
                            .ok()
                            .flatten(),
                    );
                    format!(
                        "interrupted: rsfm (pid {pid} on {inv_host}) exited while the stage ran"
                    )
                })
            };
            if let Some(reason) = reason {
                stale.push((key, reason));
            }
        }
        if stale.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer()?.begin().await?;
        let now = crate::time::now_rfc3339();
        for (key, reason) in &stale {
            sqlx::query(
                "INSERT INTO stage_runs (stage_key, invocation_id, attempt, status, started_at, finished_at, host, device, error)
                 SELECT key, invocation_id, attempts, 'interrupted', started_at, ?, host, device, ? FROM stages WHERE key = ?",
            )
            .bind(&now)
            .bind(reason)
            .bind(key)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE stages SET status = 'interrupted', finished_at = ?, error = ? WHERE key = ?")
                .bind(&now)
                .bind(reason)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        for id in &dead_invocations {
            sqlx::query("UPDATE invocations SET status = 'interrupted', finished_at = ? WHERE id = ? AND finished_at IS NULL")
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit()
            .await
            .with_context(|| self.context("marking stale running stages as interrupted"))?;
        Ok(stale.len() as u64)
    }

    /// Stages matching `filter`, ordered by experiment and name.
    pub async fn stages(&self, filter: &StageFilter) -> anyhow::Result<Vec<StageRow>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT key, name, kind, experiment, model, task, dataset, fraction, status, attempts, started_at,
                    finished_at, duration_s, host, device, invocation_id, error, stderr_tail, log_path, work_dir,
                    cache_dir, seed, last_used_at, removed_at
             FROM stages WHERE 1 = 1",
        );
        if !filter.statuses.is_empty() {
            query.push(" AND status IN (");
            let mut list = query.separated(", ");
            for status in &filter.statuses {
                list.push_bind(status.as_str());
            }
            query.push(")");
        }
        if let Some(experiment) = &filter.experiment {
            query.push(" AND experiment = ").push_bind(experiment);
        }
        if let Some(prefix) = &filter.key_prefix {
            query
                .push(" AND substr(key, 1, length(")
                .push_bind(prefix)
                .push(")) = ")
                .push_bind(prefix);
        }
        if filter.current {
            query.push(" AND key IN (SELECT key FROM current_stages)");
        }
        if let Some(keys) = &filter.keys {
            query.push(" AND key IN (SELECT value FROM json_each(");
            query.push_bind(serde_json::to_string(keys)?);
            query.push("))");
        }
        // A database written before dismissals existed has none (and no column for them).
        if filter.undismissed && self.has_dismissals().await? {
            query.push(" AND dismissed_at IS NULL");
        }
        query.push(" ORDER BY experiment, name, key");
        let rows = query
            .build()
            .fetch_all(&self.reader)
            .await
            .with_context(|| self.context("listing stages"))?;
        rows.iter().map(stage_row).collect()
    }
}

impl Store {
    /// Dismisses the failed and interrupted stages among `keys` from `rsfm status` (their rows
    /// and history stay; a new attempt shows them again). Returns how many it dismissed.
    pub async fn dismiss(&self, keys: &[String]) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "UPDATE stages SET dismissed_at = ?
             WHERE status IN ('failed', 'interrupted') AND dismissed_at IS NULL
               AND key IN (SELECT value FROM json_each(?))",
        )
        .bind(crate::time::now_rfc3339())
        .bind(serde_json::to_string(keys)?)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("dismissing stages"))?;
        Ok(done.rows_affected())
    }

    /// Whether the schema has `stages.dismissed_at` (a database opened read-only may predate it).
    async fn has_dismissals(&self) -> anyhow::Result<bool> {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pragma_table_info('stages') WHERE name = 'dismissed_at'",
        )
        .fetch_one(&self.reader)
        .await
        .with_context(|| self.context("reading the schema"))?;
        Ok(found > 0)
    }
}

/// Binds the 20 placeholders of an upsert into `stages` from `rec`, in the order of its column
/// list: key, name, kind, experiment, model, task, dataset, fraction, matrix, params, seed,
/// split, protocol, the
/// time of the event (now) twice (its own column and `last_used_at`), host, device, invocation
/// id, log path, work dir.
fn bind_stage_record<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    rec: &'q StageRecord,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    let now = crate::time::now_rfc3339();
    query
        .bind(&rec.key)
        .bind(&rec.name)
        .bind(&rec.kind)
        .bind(&rec.experiment)
        .bind(&rec.model)
        .bind(&rec.task)
        .bind(&rec.dataset)
        .bind(rec.fraction)
        .bind(rec.matrix.to_string())
        .bind(rec.params.to_string())
        .bind(rec.seed)
        .bind(&rec.split)
        .bind(&rec.protocol)
        .bind(now.clone())
        .bind(now)
        .bind(&rec.host)
        .bind(&rec.device)
        .bind(rec.invocation_id)
        .bind(&rec.log_path)
        .bind(&rec.work_dir)
}

/// A `stages` row as a [`StageRow`].
pub(super) fn stage_row(row: &SqliteRow) -> anyhow::Result<StageRow> {
    Ok(StageRow {
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        experiment: row.try_get("experiment")?,
        model: row.try_get("model")?,
        task: row.try_get("task")?,
        dataset: row.try_get("dataset")?,
        fraction: row.try_get("fraction")?,
        status: row.try_get::<String, _>("status")?.parse()?,
        attempts: row.try_get("attempts")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_s: row.try_get("duration_s")?,
        host: row.try_get("host")?,
        device: row.try_get("device")?,
        invocation_id: row.try_get("invocation_id")?,
        error: row.try_get("error")?,
        stderr_tail: row.try_get("stderr_tail")?,
        log_path: row.try_get("log_path")?,
        work_dir: row.try_get("work_dir")?,
        cache_dir: row.try_get("cache_dir")?,
        seed: row.try_get("seed")?,
        last_used_at: row.try_get("last_used_at")?,
        removed_at: row.try_get("removed_at")?,
    })
}
