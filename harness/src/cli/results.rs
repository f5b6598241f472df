//! `rsfm results [RECIPE...] [--all] [--wide] [--curve STAGE] [filters] [--format table|csv|json]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::read_store_for;
use super::BadInput;
use crate::query::{self, OutputFormat, ResultsQuery, Table, WhereExpr, WideOptions};
use crate::store::StageScope;

/// Arguments of `rsfm results`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResultsArgs {
    /// Recipes whose stages to list, at the keys they resolve to now (default: the current row
    /// of every stage in the results dir).
    pub recipes: Vec<PathBuf>,
    /// Show history too: superseded rows (older keys of a stage) and gone ones (cache entry
    /// removed), each marked in the `state` column with its finish time.
    #[arg(long)]
    pub all: bool,
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
    /// Filter, e.g. `model in ('vit-b', 'vit-605m') and params.lr < 1e-3 and matrix.fraction = 0.25
    /// and name like 'finetune%'`. Columns: experiment, name, kind, model, task, dataset,
    /// fraction, status, metric, value, step, key, seed, finished_at, params.NAME, matrix.NAME.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// Include values recorded at training steps (default: final metrics only).
    #[arg(long)]
    pub steps: bool,
    /// One row per stage: its varying matrix variables and parameters and its metrics as
    /// columns.
    #[arg(long)]
    pub wide: bool,
    /// With --wide: sort by this column (a metric, `params.X`, `matrix.X`, `model`, ...).
    #[arg(long, value_name = "COLUMN", requires = "wide")]
    pub sort: Option<String>,
    /// With --sort: largest first.
    #[arg(long, requires = "sort")]
    pub desc: bool,
    /// With --wide: at most this many rows.
    #[arg(long, value_name = "N", requires = "wide")]
    pub limit: Option<usize>,
    /// Print the training curve of this stage (`name`, `experiment/name`, or a base name for
    /// every matrix variant): loss and throughput per logged step, and any metric the worker
    /// reported at two steps or more.
    #[arg(long, value_name = "STAGE", conflicts_with = "wide")]
    pub curve: Option<String>,
    /// Output format (`--json` means `--format json`; tables show 4 significant digits and keys
    /// shortened to 12 hex digits, CSV and JSON are exact): JSON is an array of
    /// `{experiment, name, key, kind, model, task, dataset, fraction, seed, status, state,
    /// finished_at, metric, value, step}` (with --wide or --curve: `{"columns", "rows"}`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Prints the current results of `<results_dir>/rsfm.db` (or the history, a wide view, a
/// curve). Exit 2 on a bad `--where`, an unknown `--sort` or `--curve` stage, or when there are
/// no results yet.
pub async fn run(args: ResultsArgs, results_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let filter = args
        .where_expr
        .as_deref()
        .map(WhereExpr::parse)
        .transpose()
        .map_err(BadInput::wrap)?;
    let (store, current_keys) = read_store_for(&args.recipes, results_dir).await?;
    let scope = StageScope {
        current_keys,
        history: args.all,
    };
    let format = if json {
        OutputFormat::Json
    } else {
        args.format
    };
    if let Some(stage) = &args.curve {
        let table = query::curve_table(&store, &scope, stage)
            .await
            .map_err(BadInput::wrap)?;
        store.close().await;
        print_table(table, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    let query = ResultsQuery {
        scope,
        experiment: args.experiment,
        model: args.model,
        task: args.task,
        dataset: args.dataset,
        metric: args.metric,
        filter,
        include_steps: args.steps,
    };
    let rows = query::results(&store, &query).await?;
    if args.wide {
        let options = WideOptions {
            sort: args.sort,
            descending: args.desc,
            limit: args.limit,
            history: args.all,
        };
        let table = query::wide_table(&store, &rows, &options)
            .await
            .map_err(BadInput::wrap)?;
        store.close().await;
        print_table(table, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    store.close().await;
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Csv => print_csv(&query::results_table(&rows)?.to_csv()),
        OutputFormat::Table if rows.is_empty() => eprintln!("no results match"),
        OutputFormat::Table => {
            let mut table = query::results_table(&rows)?;
            // The protocol (a long `name=value` list) shows with --all, and in CSV and JSON.
            let hidden: &[&str] = match (args.all, args.steps) {
                (true, true) => &[],
                (true, false) => &["step"],
                (false, true) => &["protocol", "state", "finished_at"],
                (false, false) => &["protocol", "state", "finished_at", "step"],
            };
            drop_columns(&mut table, hidden);
            print_table(table, OutputFormat::Table)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints CSV as it is to a file or pipe, with control characters other than line ends and tabs
/// escaped on a terminal (names come from recipes).
fn print_csv(csv: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print!("{}", query::for_terminal_lines(csv));
    } else {
        print!("{csv}");
    }
}

/// Prints `table` as text (keys shortened), CSV, or JSON `{"columns": [...], "rows": [[...]]}`.
fn print_table(mut table: Table, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "columns": table.columns,
                "rows": table.rows,
            }))?
        ),
        OutputFormat::Csv => print_csv(&table.to_csv()),
        OutputFormat::Table if table.rows.is_empty() => eprintln!("no results match"),
        OutputFormat::Table => {
            shorten_keys(&mut table);
            print!("{}", table.to_text());
        }
    }
    Ok(())
}

/// Removes the named columns from a text table.
fn drop_columns(table: &mut Table, names: &[&str]) {
    let keep: Vec<bool> = table
        .columns
        .iter()
        .map(|c| !names.contains(&c.as_str()))
        .collect();
    table.columns = kept(&table.columns, &keep);
    for row in &mut table.rows {
        *row = kept(row, &keep);
    }
}

/// The items of `items` whose flag in `keep` is set.
fn kept<T: Clone>(items: &[T], keep: &[bool]) -> Vec<T> {
    items
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(item, _)| item.clone())
        .collect()
}

/// Shortens each key of the text table to the common prefix length (CSV and JSON keep them
/// whole).
fn shorten_keys(table: &mut Table) {
    if let Some(column) = table.columns.iter().position(|c| c == "key") {
        for row in &mut table.rows {
            if let Some(serde_json::Value::String(key)) = row.get_mut(column) {
                *key = query::short_key(key).to_string();
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MetricRow, StageOutcome, StageRecord, StageStatus, Store};

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
            seed: Some(0),
            split: None,
            protocol: None,
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
            commit_s: None,
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
    fn the_text_table_shortens_keys_only_and_drops_columns_by_name() {
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
        drop_columns(&mut table, &["name"]);
        assert_eq!(table.columns, vec!["key".to_string()]);
        assert_eq!(table.rows[0], vec![serde_json::json!("0123456789ab")]);
    }
}
