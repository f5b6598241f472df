//! The user's own statements (`rsfm sql`): one read-only statement, its rows streamed to a
//! [`RowSink`] as SQLite produces them, within [`SqlLimits`]: a wall-clock limit (a progress
//! handler interrupts the statement), a memory limit inside SQLite (`hard_heap_limit`) and a
//! largest value, so a runaway recursive CTE, a huge result or `randomblob(4e8)` stops with a
//! message rather than running for ever or exhausting memory.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::{check_read_only, QueryResult, Store};

/// Largest TEXT or BLOB value a row may carry to the output.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Virtual-machine steps between two checks of the time limit.
const PROGRESS_STEPS: i32 = 10_000;

/// What one user statement may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqlLimits {
    /// Wall-clock time from the start of the statement to its last row.
    pub time: Duration,
    /// Memory SQLite may allocate while the statement runs (the process's `hard_heap_limit`).
    pub memory_bytes: u64,
}

impl Default for SqlLimits {
    fn default() -> SqlLimits {
        SqlLimits {
            time: Duration::from_secs(60),
            memory_bytes: 256 << 20,
        }
    }
}

/// Where the rows of a user statement go, one at a time.
pub trait RowSink {
    /// The column names, before the first row (or, for an empty result, at the end).
    fn columns(&mut self, columns: &[String]) -> anyhow::Result<()>;
    /// One row, one cell per column.
    fn row(&mut self, row: Vec<serde_json::Value>) -> anyhow::Result<()>;
}

/// A sink that keeps everything (for callers that want the whole result).
#[derive(Default)]
struct Collect(QueryResult);

impl RowSink for Collect {
    fn columns(&mut self, columns: &[String]) -> anyhow::Result<()> {
        self.0 .0 = columns.to_vec();
        Ok(())
    }

    fn row(&mut self, row: Vec<serde_json::Value>) -> anyhow::Result<()> {
        self.0 .1.push(row);
        Ok(())
    }
}

impl Store {
    /// Runs one read-only statement (SELECT, WITH, VALUES, EXPLAIN or a reading PRAGMA) within
    /// the default [`SqlLimits`] and returns its column names and rows. Anything else is
    /// refused before it reaches SQLite, and the connection itself is read-only.
    pub async fn query_read_only(&self, sql: &str) -> anyhow::Result<QueryResult> {
        let mut all = Collect::default();
        self.stream_read_only(sql, SqlLimits::default(), &mut all)
            .await?;
        Ok(all.0)
    }

    /// Runs one read-only statement, handing each row to `sink` as SQLite produces it (memory
    /// stays bounded however many rows there are), within `limits`. Returns the row count.
    pub async fn stream_read_only(
        &self,
        sql: &str,
        limits: SqlLimits,
        sink: &mut dyn RowSink,
    ) -> anyhow::Result<u64> {
        check_read_only(sql)?;
        let mut conn = self
            .reader
            .acquire()
            .await
            .with_context(|| self.context("connecting"))?;
        set_heap_limit(&mut conn, limits.memory_bytes).await?;
        let deadline = Instant::now() + limits.time;
        conn.lock_handle()
            .await?
            .set_progress_handler(PROGRESS_STEPS, move || Instant::now() < deadline);
        let outcome = stream_rows(&mut conn, sql, sink).await;
        // The connection goes back to the pool as it came: no deadline, no heap limit.
        conn.lock_handle().await?.remove_progress_handler();
        set_heap_limit(&mut conn, 0).await?;
        let count = outcome.map_err(|err| explain_stop(err, &limits))?;
        if let Some(columns) = count.1 {
            sink.columns(&columns)?;
        }
        Ok(count.0)
    }
}

/// Streams the rows of `sql` on `conn` into `sink`; returns the row count and, for an empty
/// result, the column names (described, since no row carries them).
async fn stream_rows(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    sink: &mut dyn RowSink,
) -> anyhow::Result<(u64, Option<Vec<String>>)> {
    let mut count = 0u64;
    {
        let mut rows = sqlx::query(sql).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.context("running the query")? {
            if count == 0 {
                let columns: Vec<String> =
                    row.columns().iter().map(|c| c.name().to_string()).collect();
                sink.columns(&columns)?;
            }
            count += 1;
            sink.row(json_cells(&row, count)?)?;
        }
    }
    if count > 0 {
        return Ok((count, None));
    }
    let described = sqlx::Executor::describe(&mut *conn, sql)
        .await
        .context("describing the query")?;
    let columns = described
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    Ok((0, Some(columns)))
}

/// The process's SQLite heap limit (0: none). Process-wide, which is what `rsfm sql` wants.
async fn set_heap_limit(conn: &mut sqlx::SqliteConnection, bytes: u64) -> anyhow::Result<()> {
    sqlx::query(&format!("PRAGMA hard_heap_limit = {bytes}"))
        .execute(&mut *conn)
        .await
        .context("setting the memory limit of the query")?;
    Ok(())
}

/// A statement stopped by a limit, said as such with the way to raise it; other errors as
/// they are.
fn explain_stop(err: anyhow::Error, limits: &SqlLimits) -> anyhow::Error {
    let code = err
        .chain()
        .find_map(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        });
    match code.as_deref() {
        // SQLITE_INTERRUPT: the progress handler saw the deadline pass.
        Some("9") => anyhow::anyhow!(
            "the query ran past its time limit of {} s and was stopped: narrow it (WHERE, LIMIT) or raise the limit with --time-limit SECONDS (or RSFM_SQL_TIME_LIMIT_S)",
            limits.time.as_secs_f64()
        ),
        // SQLITE_NOMEM: the heap limit refused an allocation.
        Some("7") => anyhow::anyhow!(
            "the query needed more than {} MiB of memory inside SQLite and was stopped: select fewer or smaller values, or raise the limit with --max-memory-mb MIB (or RSFM_SQL_MAX_MEMORY_MB)",
            limits.memory_bytes >> 20
        ),
        _ => err,
    }
}

/// The cells of `row` (the `number`th, for messages) as JSON: integers, reals (non-finite →
/// null), text, blobs as hex; a text or blob larger than [`MAX_VALUE_BYTES`] is an error.
fn json_cells(row: &SqliteRow, number: u64) -> anyhow::Result<Vec<serde_json::Value>> {
    let too_large = |i: usize, len: usize| {
        anyhow::anyhow!(
            "row {number}, column `{}`: a value of {len} bytes, more than the {} MiB `rsfm sql` prints: select length(…) or substr(…, 1, N) instead",
            row.column(i).name(),
            MAX_VALUE_BYTES >> 20
        )
    };
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(serde_json::Value::Null);
            }
            let kind = raw.type_info().name().to_string();
            Ok(match kind.as_str() {
                "INTEGER" => serde_json::Value::from(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" => serde_json::Number::from_f64(row.try_get_unchecked::<f64, _>(i)?)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                "BLOB" => {
                    let bytes = row.try_get_unchecked::<&[u8], _>(i)?;
                    if bytes.len() > MAX_VALUE_BYTES {
                        return Err(too_large(i, bytes.len()));
                    }
                    serde_json::Value::from(hex::encode(bytes))
                }
                _ => {
                    let text = row.try_get_unchecked::<&str, _>(i)?;
                    if text.len() > MAX_VALUE_BYTES {
                        return Err(too_large(i, text.len()));
                    }
                    serde_json::Value::from(text)
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
        store.begin_invocation(&[]).await.unwrap();
        store.close().await;
        let reader = Store::open_read_only(&dir.path().join("rsfm.db"))
            .await
            .unwrap();
        (dir, reader)
    }

    #[tokio::test]
    async fn a_runaway_recursive_query_stops_at_its_time_limit() {
        let (_dir, store) = store().await;
        let limits = SqlLimits {
            time: Duration::from_millis(300),
            ..SqlLimits::default()
        };
        let started = Instant::now();
        let err = store
            .stream_read_only(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                limits,
                &mut Collect::default(),
            )
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        let message = format!("{err:#}");
        assert!(message.contains("time limit of 0.3 s"), "{message}");
        // The pooled connection is usable again, without the old deadline.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (_, rows) = store.query_read_only("SELECT 1").await.unwrap();
        assert_eq!(rows, [[serde_json::json!(1)]]);
    }

    #[tokio::test]
    async fn a_huge_value_stops_at_the_memory_or_value_limit() {
        let (_dir, store) = store().await;
        let limits = SqlLimits {
            memory_bytes: 64 << 20,
            ..SqlLimits::default()
        };
        let err = store
            .stream_read_only(
                "SELECT randomblob(400000000)",
                limits,
                &mut Collect::default(),
            )
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("more than 64 MiB"), "{err:#}");
        let err = store
            .stream_read_only(
                "SELECT zeroblob(20000000) AS z",
                limits,
                &mut Collect::default(),
            )
            .await
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("row 1, column `z`") && message.contains("length("),
            "{message}"
        );
    }
}
