//! `rsfm sql "SELECT ..." [--format table|csv|json]`: read-only SQL on `<results>/rsfm.db`.

use std::path::Path;
use std::process::ExitCode;

use super::BadInput;
use crate::query::{OutputFormat, Table};
use crate::store::{check_read_only, Store};

/// Arguments of `rsfm sql`.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// One read-only statement: SELECT, WITH … SELECT, VALUES, EXPLAIN, or a reading PRAGMA.
    pub sql: String,
    /// Output format (`--json` means `--format json`): JSON is `{"columns": [..], "rows": [[..], ..]}`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Runs the statement on a connection that cannot write (`mode=ro`, `query_only`), after
/// refusing anything but a single read-only statement. Exit 2 on a refused or invalid statement.
pub async fn run(args: SqlArgs, results_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    check_read_only(&args.sql).map_err(BadInput::wrap)?;
    let outcome = match Store::open_read_only(&results_dir.join("rsfm.db")).await {
        Ok(store) => {
            let outcome = store.query_read_only(&args.sql).await;
            store.close().await;
            outcome
        }
        Err(err) => Err(err),
    };
    let (columns, rows) = match outcome {
        Ok(result) => result,
        Err(err) => return Err(BadInput::wrap(err)),
    };
    let table = Table { columns, rows };
    match if json {
        OutputFormat::Json
    } else {
        args.format
    } {
        OutputFormat::Json => {
            let shape = serde_json::json!({ "columns": table.columns, "rows": table.rows });
            println!("{}", serde_json::to_string_pretty(&shape)?);
        }
        OutputFormat::Csv => print!("{}", table.to_csv()),
        OutputFormat::Table => print!("{}", table.to_text()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sql: &str) -> SqlArgs {
        SqlArgs {
            sql: sql.into(),
            format: OutputFormat::Table,
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
