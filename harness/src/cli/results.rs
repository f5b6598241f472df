//! `rsfm results [--experiment E] [--model M] [--task T] [--dataset D] [--metric X] [--where EXPR]
//! [--steps] [--format table|csv|json]`.

use std::path::Path;
use std::process::ExitCode;

use super::BadInput;
use crate::query::{self, OutputFormat, ResultsQuery, Table, WhereExpr};
use crate::store::Store;

/// Arguments of `rsfm results`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResultsArgs {
    /// Only this experiment.
    #[arg(long)]
    pub experiment: Option<String>,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only this metric.
    #[arg(long)]
    pub metric: Option<String>,
    /// Filter, e.g. `model in ('vit-b', 'vit-605m') and fraction between 0.1 and 0.5 and value > 70`.
    /// Columns: experiment, name, kind, model, task, dataset, fraction, status, metric, value,
    /// step, key, seed.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// Include values recorded at training steps (default: final metrics only).
    #[arg(long)]
    pub steps: bool,
    /// Output format (`--json` means `--format json`; the table shows keys shortened to 12 hex
    /// digits): JSON is an array of
    /// `{experiment, name, key, kind, model, task, dataset, fraction, seed, status, metric, value, step}`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Prints one row per (stage, metric) of `<results_dir>/rsfm.db`. Exit 2 on a bad `--where` or
/// when there are no results yet.
pub async fn run(args: ResultsArgs, results_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let filter = match args.where_expr.as_deref().map(WhereExpr::parse).transpose() {
        Ok(filter) => filter,
        Err(err) => return Err(BadInput::wrap(err)),
    };
    let store = match Store::open_read_only(&results_dir.join("rsfm.db")).await {
        Ok(store) => store,
        Err(err) => return Err(BadInput::wrap(err)),
    };
    let query = ResultsQuery {
        experiment: args.experiment,
        model: args.model,
        task: args.task,
        dataset: args.dataset,
        metric: args.metric,
        filter,
        include_steps: args.steps,
    };
    let rows = query::results(&store, &query).await?;
    store.close().await;
    match if json {
        OutputFormat::Json
    } else {
        args.format
    } {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Csv => print!("{}", query::results_table(&rows)?.to_csv()),
        OutputFormat::Table if rows.is_empty() => eprintln!("no results match"),
        OutputFormat::Table => {
            let mut table = query::results_table(&rows)?;
            shorten_keys(&mut table);
            print!("{}", table.to_text());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows the first 12 hex digits of each key in the text table (CSV and JSON keep them whole).
fn shorten_keys(table: &mut Table) {
    if let Some(column) = table.columns.iter().position(|c| c == "key") {
        for row in &mut table.rows {
            if let Some(serde_json::Value::String(key)) = row.get_mut(column) {
                key.truncate(12);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MetricRow, StageOutcome, StageRecord, StageStatus};

    #[tokio::test]
    async fn bad_input_exits_2_good_input_0() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
        let inv = store.begin_invocation(&[]).await.unwrap();
        let record = StageRecord {
            key: "k".into(),
            name: "eval".into(),
            kind: "evaluate".into(),
            experiment: "e".into(),
            model: Some("vit-b".into()),
            task: None,
            dataset: None,
            fraction: None,
            matrix: serde_json::json!({}),
            params: serde_json::json!({}),
            host: "h".into(),
            device: "cpu".into(),
            invocation_id: inv,
            work_dir: String::new(),
            log_path: String::new(),
        };
        store.stage_started(&record).await.unwrap();
        let outcome = StageOutcome {
            status: StageStatus::Succeeded,
            error: None,
            stderr_tail: None,
            metrics: vec![MetricRow {
                name: "map".into(),
                value: 71.5,
                step: None,
            }],
            artifacts: vec![],
            cache_dir: None,
            duration_s: 1.0,
        };
        store.stage_finished("k", &outcome).await.unwrap();
        store.close().await;

        let run_with = |where_expr: Option<&str>, format| {
            let args = ResultsArgs {
                where_expr: where_expr.map(str::to_string),
                format,
                ..Default::default()
            };
            run(args, dir.path(), false)
        };
        assert_eq!(
            run_with(Some("value > 70"), OutputFormat::Table)
                .await
                .unwrap(),
            ExitCode::SUCCESS
        );
        assert_eq!(
            run_with(None, OutputFormat::Csv).await.unwrap(),
            ExitCode::SUCCESS
        );
        assert_eq!(
            run_with(None, OutputFormat::Json).await.unwrap(),
            ExitCode::SUCCESS
        );
        assert!(crate::error::is_bad_input(
            &run_with(Some("value >"), OutputFormat::Table)
                .await
                .unwrap_err()
        ));
        assert!(crate::error::is_bad_input(
            &run_with(Some("colour = 'red'"), OutputFormat::Table)
                .await
                .unwrap_err()
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(crate::error::is_bad_input(
            &run(ResultsArgs::default(), empty.path(), false)
                .await
                .unwrap_err()
        ));
    }

    #[test]
    fn the_text_table_shortens_keys_only() {
        let mut table = Table {
            columns: vec!["name".into(), "key".into()],
            rows: vec![vec![
                serde_json::json!("0123456789abcdef"),
                serde_json::json!("0123456789abcdef"),
            ]],
        };
        shorten_keys(&mut table);
        assert_eq!(
            table.rows[0],
            vec![
                serde_json::json!("0123456789abcdef"),
                serde_json::json!("0123456789ab")
            ]
        );
    }
}
