//! Which row of a stage is current: the key its recipe resolves to now, or (without recipes) the
//! row last used per (experiment, stage name). Older rows are superseded; rows whose cache entry
//! `rsfm cache gc` removed are gone.

use anyhow::Context;
use sqlx::{QueryBuilder, Sqlite};

use super::{StageRow, Store};

/// The rows a listing covers and what counts as current among them.
///
/// With `current_keys` set (the keys recipes resolve to now), exactly those keys are current;
/// without it, the rows of the `current_stages` view are: per (experiment, stage name), the row
/// last used (run or found in the cache) whose cache entry still exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageScope {
    /// Keys that are current; `None`: the latest row per stage.
    pub current_keys: Option<Vec<String>>,
    /// Also cover superseded and gone rows (of the experiments of `current_keys`, when set).
    pub history: bool,
}

impl StageScope {
    /// Current rows only, as chosen by `current_keys` (see the type's docs).
    pub fn current(current_keys: Option<Vec<String>>) -> StageScope {
        StageScope {
            current_keys,
            history: false,
        }
    }

    /// Appends an SQL condition on the `stages` row aliased `s` that selects the covered rows.
    pub(crate) fn push_condition(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        match (&self.current_keys, self.history) {
            (_, false) => self.push_is_current(sql),
            (None, true) => {
                sql.push("1 = 1");
            }
            (Some(keys), true) => {
                sql.push(
                    "s.experiment IN (SELECT experiment FROM stages WHERE key IN \
                     (SELECT value FROM json_each(",
                )
                .push_bind(keys_json(keys))
                .push(")))");
            }
        }
    }

    /// Appends an SQL expression giving the row's state: `current`, `superseded` or `gone`.
    pub(crate) fn push_state(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        sql.push("CASE WHEN s.removed_at IS NOT NULL THEN 'gone' WHEN ");
        self.push_is_current(sql);
        sql.push(" THEN 'current' ELSE 'superseded' END");
    }

    fn push_is_current(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        match &self.current_keys {
            None => {
                sql.push("s.key IN (SELECT key FROM current_stages)");
            }
            Some(keys) => {
                sql.push("s.key IN (SELECT value FROM json_each(")
                    .push_bind(keys_json(keys))
                    .push("))");
            }
        }
    }
}

fn keys_json(keys: &[String]) -> String {
    serde_json::Value::from(keys.to_vec()).to_string()
}

impl Store {
    /// The stage rows `scope` covers (by default the current row of each stage), ordered by
    /// experiment and name. This is the one definition of "current results" that `rsfm results`
    /// and reports share: pass the keys a plan resolves to now, or `None` for the latest state.
    pub async fn scoped_stages(&self, scope: &StageScope) -> anyhow::Result<Vec<StageRow>> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT key, name, kind, experiment, model, task, dataset, fraction, status, attempts, started_at,
                    finished_at, duration_s, host, device, invocation_id, error, stderr_tail, log_path, work_dir,
                    cache_dir, seed, last_used_at, removed_at
             FROM stages AS s WHERE ",
        );
        scope.push_condition(&mut sql);
        sql.push(" ORDER BY experiment, name, key");
        let rows = sql
            .build()
            .fetch_all(self.reader())
            .await
            .with_context(|| self.context("listing current stages"))?;
        rows.iter().map(super::stages::stage_row).collect()
    }

    /// Records that `rsfm cache gc` removed the cache entries of `keys`: their rows become gone.
    /// Returns how many rows changed.
    pub async fn mark_removed(&self, keys: &[String]) -> anyhow::Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let updated = sqlx::query(
            "UPDATE stages SET removed_at = ? WHERE removed_at IS NULL
                 AND key IN (SELECT value FROM json_each(?))",
        )
        .bind(crate::time::now_rfc3339())
        .bind(keys_json(keys))
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("marking removed cache entries"))?;
        Ok(updated.rows_affected())
    }
}
