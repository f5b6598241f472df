//! `rsfm sql "SELECT ..." [--format table|csv|json]`: read-only SQL on `<results>/rsfm.db`,
//! rows printed as SQLite produces them, within a time and a memory limit.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::BadInput;
use crate::query::{OutputFormat, RowWriter};
use crate::store::{check_read_only, SqlLimits, Store};

/// Arguments of `rsfm sql`.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// One read-only statement: SELECT, WITH … SELECT, VALUES, EXPLAIN, or a reading PRAGMA.
    pub sql: String,
    /// Output format (`--json` means `--format json`): JSON is `{"columns": [..], "rows": [[..], ..]}`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Seconds the statement may run (to its last row) before it is stopped.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "RSFM_SQL_TIME_LIMIT_S",
        default_value_t = 60.0
    )]
    pub time_limit: f64,
    /// MiB of memory SQLite may use for the statement before it is stopped.
    #[arg(
        long,
        value_name = "MIB",
        env = "RSFM_SQL_MAX_MEMORY_MB",
        default_value_t = 256
    )]
    pub max_memory_mb: u64,
}

/// Runs the statement on a connection that cannot write (`mode=ro`, `query_only`), after
/// refusing anything but a single read-only statement. Exit 2 on a refused or invalid statement.
pub async fn run(args: SqlArgs, results_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    check_read_only(&args.sql).map_err(BadInput::wrap)?;
    if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
        return Err(BadInput::msg(format!(
            "--time-limit {}: give a positive number of seconds",
            args.time_limit
        )));
    }
    let limits = SqlLimits {
        time: Duration::from_secs_f64(args.time_limit),
        memory_bytes: args.max_memory_mb.max(1) << 20,
    };
    let format = if json {
        OutputFormat::Json
    } else {
        args.format
    };
    let store = Store::open_read_only(&results_dir.join("rsfm.db"))
        .await
        .map_err(BadInput::wrap)?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut writer = RowWriter::new(std::io::BufWriter::new(std::io::stdout().lock()), format)
        .escaping_controls(terminal);
    let outcome = store.stream_read_only(&args.sql, limits, &mut writer).await;
    store.close().await;
    outcome.map_err(BadInput::wrap)?;
    writer.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sql: &str) -> SqlArgs {
        SqlArgs {
            sql: sql.into(),
            format: OutputFormat::Table,
            time_limit: 60.0,
            max_memory_mb: 256,
        }
    }

    #[tokio::test]
    async fn refused_or_failing_statements_exit_2_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
        store.begin_invocation(&["rsfm".into()]).await.unwrap();
        store.close().await;
        for statement in [
            "DELETE FROM invocations",
            "DROP TABLE invocations",
            "SELECT 1; DELETE FROM invocations",
        ] {
            assert!(
                crate::error::is_bad_input(
                    &run(args(statement), dir.path(), false).await.unwrap_err()
                ),
                "{statement}"
            );
        }
        assert!(crate::error::is_bad_input(
            &run(args("SELECT * FROM missing"), dir.path(), false)
                .await
                .unwrap_err()
        ));
        let count = "SELECT count(*) FROM invocations";
        assert_eq!(
            run(args(count), dir.path(), true).await.unwrap(),
            ExitCode::SUCCESS
        );
        let store = Store::open_read_only(&dir.path().join("rsfm.db"))
            .await
            .unwrap();
        assert_eq!(
            store.query_read_only(count).await.unwrap().1[0][0],
            serde_json::json!(1)
        );

        let empty = tempfile::tempdir().unwrap();
        assert!(crate::error::is_bad_input(
            &run(args("SELECT 1"), empty.path(), false)
                .await
                .unwrap_err()
        ));
        assert!(!empty.path().join("rsfm.db").exists());
    }
}
