//! The results store: `results/rsfm.db`, SQLite through sqlx.
//!
//! One writer (the harness) holds a single-connection pool, so writes never contend inside a
//! process; readers use a separate pool opened read-only (`mode=ro`) with `PRAGMA query_only=ON`.
//! The database runs in WAL mode with `synchronous=NORMAL`, foreign keys on and a 30 s busy
//! timeout. The schema lives in `harness/migrations/`, embedded and applied by [`Store::open`].

mod current;
mod damage;
mod detached;
mod file_hashes;
mod migrations;
mod read_only_sql;
mod records;
mod reported;
mod stages;
mod submissions;
mod user_sql;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use current::StageScope;
pub use detached::{DetachedJob, QUEUED};
pub use read_only_sql::{check_read_only, ReadOnlySqlError};
pub use records::{
    ArtifactRow, FileHashRow, MetricRow, ReportedRow, StageFilter, StageOutcome, StageRecord,
    StageRow, StageStatus,
};
pub use submissions::{Reply, Submission};
pub use user_sql::{RowSink, SqlLimits};

/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections in the read-only pool.
const READERS: u32 = 4;

/// Handle to the results database; cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    writer: Option<SqlitePool>,
    reader: SqlitePool,
}

/// Column names and rows (as JSON values) of a query's result.
pub type QueryResult = (Vec<String>, Vec<Vec<serde_json::Value>>);

impl Store {
    /// Opens (creating it and its directory if needed) the database at `db_path` for writing,
    /// switches it to WAL mode and applies pending migrations.
    pub async fn open(db_path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs_err::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|err| damage::explain(err, db_path, "opening the results database"))?;
        damage::probe(&writer, db_path).await?;
        migrations::migrator()
            .await?
            .run(&writer)
            .await
            .with_context(|| format!("applying migrations to {}", db_path.display()))?;
        let reader = read_only_pool(db_path).await?;
        Ok(Store {
            path: db_path.to_path_buf(),
            writer: Some(writer),
            reader,
        })
    }

    /// Opens an existing database for reading only (`mode=ro`, `PRAGMA query_only=ON`).
    pub async fn open_read_only(db_path: &Path) -> anyhow::Result<Store> {
        if !db_path.is_file() {
            anyhow::bail!(
                "no results yet: {} does not exist (run `rsfm run` first, or point --results at another directory)",
                db_path.display()
            );
        }
        let reader = read_only_pool(db_path).await?;
        let reader = damage::probe_recovering(reader, db_path, || read_only_pool(db_path)).await?;
        Ok(Store {
            path: db_path.to_path_buf(),
            writer: None,
            reader,
        })
    }

    /// For commands that only read: the database at `db_path` opened read-only (its file is
    /// never written, so its mtime stays), or, where it does not exist yet, an empty in-memory
    /// database with the current schema (nothing is created on disk).
    pub async fn open_for_reading(db_path: &Path) -> anyhow::Result<Store> {
        if db_path.is_file() {
            return Store::open_read_only(db_path).await;
        }
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // One connection that never closes: the database lives as long as it does.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .context("opening an in-memory results database")?;
        migrations::migrator()
            .await?
            .run(&pool)
            .await
            .context("applying migrations to the in-memory results database")?;
        Ok(Store {
            path: db_path.to_path_buf(),
            writer: Some(pool.clone()),
            reader: pool,
        })
    }

    /// Whether this store writes (false for [`Store::open_read_only`]).
    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes both pools, waiting for their connections to finish (WAL is checkpointed).
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.reader.close().await;
    }

    /// Records the start of an `rsfm` command on this host and returns its invocation id.
    pub async fn begin_invocation(&self, argv: &[String]) -> anyhow::Result<i64> {
        let results_dir = self
            .path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let result = sqlx::query(
            "INSERT INTO invocations (started_at, argv, host, pid, boot_id, results_dir, status)
             VALUES (?, ?, ?, ?, ?, ?, 'running')",
        )
        .bind(crate::time::now_rfc3339())
        .bind(serde_json::to_string(argv)?)
        .bind(crate::process::host_name())
        .bind(i64::from(std::process::id()))
        .bind(crate::process::boot_id())
        .bind(results_dir)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("recording the invocation"))?;
        Ok(result.last_insert_rowid())
    }

    /// Records the end of invocation `id` with its final `status` and `summary`.
    pub async fn finish_invocation(
        &self,
        id: i64,
        status: &str,
        summary: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let updated = sqlx::query(
            "UPDATE invocations SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
        )
        .bind(crate::time::now_rfc3339())
        .bind(status)
        .bind(serde_json::to_string(summary)?)
        .bind(id)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("recording the end of the invocation"))?;
        if updated.rows_affected() == 0 {
            anyhow::bail!("{}: no invocation with id {id}", self.path.display());
        }
        Ok(())
    }

    /// The write pool, or an error if this store was opened read-only.
    fn writer(&self) -> anyhow::Result<&SqlitePool> {
        self.writer.as_ref().with_context(|| {
            format!(
                "{} was opened read-only; this operation writes",
                self.path.display()
            )
        })
    }

    /// The read-only pool, for the query layer's parameterised statements.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Error context naming the database file.
    fn context(&self, what: &str) -> String {
        format!("{what} in {}", self.path.display())
    }
}

/// A pool of read-only connections to `db_path`.
async fn read_only_pool(db_path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(db_path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("query_only", "ON");
    SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options)
        .await
        .map_err(|err| damage::explain(err, db_path, "opening read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_read_pool_refuses_writes_even_past_the_statement_check() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
        store.begin_invocation(&[]).await.unwrap();
        for statement in [
            "DELETE FROM invocations",
            "CREATE TABLE x (a)",
            "PRAGMA user_version = 7",
        ] {
            let err = sqlx::query(statement)
                .execute(store.reader())
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("readonly") || err.contains("read-only"),
                "{statement}: {err}"
            );
        }
        let (_, rows) = store
            .query_read_only(
                "SELECT count(*), (SELECT user_version FROM pragma_user_version) FROM invocations",
            )
            .await
            .unwrap();
        assert_eq!(rows[0], vec![serde_json::json!(1), serde_json::json!(0)]);
    }
}
