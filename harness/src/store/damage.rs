//! A damaged `rsfm.db` is reported with what to do, never silently recreated.
//!
//! SQLite says `file is not a database` (code 26) or `database disk image is malformed` (code 11)
//! when the file is damaged; [`probe`] reads the schema once at open so that every command meets
//! the damage at once, and [`explain`] turns those codes into one message with the fix.

use std::path::Path;

use sqlx::SqlitePool;

/// SQLite's primary result codes for a damaged file: `SQLITE_CORRUPT` and `SQLITE_NOTADB`.
const DAMAGED: [i64; 2] = [11, 26];

/// Whether `err` is SQLite saying the file is damaged.
fn is_damage(err: &sqlx::Error) -> bool {
    let code = match err {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i64>().ok()),
        _ => None,
    };
    code.is_some_and(|c| DAMAGED.contains(&(c & 0xff)))
}

/// `err` with a message saying what to do when it is damage to `db_path`, else `err` with
/// `what` as its context.
pub fn explain(err: sqlx::Error, db_path: &Path, what: &str) -> anyhow::Error {
    if !is_damage(&err) {
        return anyhow::Error::new(err).context(format!("{what} in {}", db_path.display()));
    }
    let path = db_path.display();
    anyhow::anyhow!(
        "{path} is damaged ({err}); rsfm leaves it as it is.\n  help: keep a copy and move it aside (`mv {path} {path}.damaged`), or restore it from a backup; \
         the stage cache next to it is not affected: the next `rsfm run` records its stages as cached again, and `rsfm run --force STAGE` records a stage's metrics again"
    )
}

/// Reads the schema once, so that a damaged file is reported at open, not in the middle of work.
pub async fn probe(pool: &SqlitePool, db_path: &Path) -> anyhow::Result<()> {
    read_schema(pool)
        .await
        .map_err(|err| explain(err, db_path, "reading the schema"))
}

/// Reads the schema once.
async fn read_schema(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(pool)
        .await
        .map(|_| ())
}

/// SQLite's extended codes for a read-only connection that meets a journal only a writer can
/// replay: `SQLITE_READONLY_RECOVERY`, `SQLITE_READONLY_ROLLBACK`, `SQLITE_READONLY_CANTINIT`.
const NEEDS_WRITER: [i64; 3] = [264, 776, 1288];

/// Probes a read-only `pool` of `db_path`. When a run killed mid-write left a hot journal that
/// a read-only connection cannot replay, a short writable connection replays it (what any
/// writer does first; the committed content stays as it was) and `reopen` opens the pool again.
pub async fn probe_recovering<F, Fut>(
    pool: SqlitePool,
    db_path: &Path,
    reopen: F,
) -> anyhow::Result<SqlitePool>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<SqlitePool>>,
{
    let err = match read_schema(&pool).await {
        Ok(()) => return Ok(pool),
        Err(err) => err,
    };
    let needs_writer = match &err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| NEEDS_WRITER.contains(&c)),
        _ => false,
    };
    if !needs_writer {
        return Err(explain(err, db_path, "reading the schema"));
    }
    pool.close().await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db_path);
    let writer = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|err| explain(err, db_path, "replaying the journal of a killed run"))?;
    read_schema(&writer)
        .await
        .map_err(|err| explain(err, db_path, "replaying the journal of a killed run"))?;
    writer.close().await;
    let pool = reopen().await?;
    probe(&pool, db_path).await?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_reported_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rsfm.db");
        let garbage = b"not a database\n".repeat(300);
        std::fs::write(&db, &garbage).unwrap();
        for outcome in [
            crate::store::Store::open(&db).await.map(|_| ()),
            crate::store::Store::open_read_only(&db).await.map(|_| ()),
        ] {
            let message = format!("{:#}", outcome.unwrap_err());
            assert!(message.contains("is damaged"), "{message}");
            assert!(message.contains(".damaged"), "{message}");
        }
        assert_eq!(std::fs::read(&db).unwrap(), garbage, "the file was changed");
    }

    #[tokio::test]
    async fn a_database_with_a_damaged_page_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rsfm.db");
        let store = crate::store::Store::open(&db).await.unwrap();
        store.begin_invocation(&["rsfm".into()]).await.unwrap();
        store.close().await;
        // Overwrite the schema page's b-tree header (page 1 starts after the 100-byte header).
        let mut bytes = std::fs::read(&db).unwrap();
        for b in &mut bytes[100..140] {
            *b = 0xff;
        }
        std::fs::write(&db, &bytes).unwrap();
        let message = format!("{:#}", crate::store::Store::open(&db).await.unwrap_err());
        assert!(message.contains("is damaged"), "{message}");
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file was changed");
    }
}
