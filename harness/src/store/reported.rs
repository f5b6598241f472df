//! Numbers the paper reports (`reported`), loaded from `recipes/paper/reported.toml`.

use anyhow::Context;
use sqlx::Row;

use super::{ReportedRow, Store};

impl Store {
    /// Replaces, in one transaction, every reported cell of the tables that `rows` mention with
    /// `rows` (so a cell removed from the source disappears here too).
    pub async fn replace_reported(&self, rows: &[ReportedRow]) -> anyhow::Result<()> {
        let mut tx = self.writer()?.begin().await?;
        let mut tables: Vec<&str> = rows.iter().map(|r| r.table_name.as_str()).collect();
        tables.sort_unstable();
        tables.dedup();
        for table in tables {
            sqlx::query("DELETE FROM reported WHERE table_name = ?")
                .bind(table)
                .execute(&mut *tx)
                .await?;
        }
        for row in rows {
            sqlx::query("INSERT OR REPLACE INTO reported (table_name, row, col, value, source) VALUES (?, ?, ?, ?, ?)")
                .bind(&row.table_name)
                .bind(&row.row)
                .bind(&row.col)
                .bind(row.value)
                .bind(&row.source)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit()
            .await
            .with_context(|| self.context("storing reported numbers"))?;
        Ok(())
    }

    /// The reported cells of `table_name` (all tables when `None`), ordered by table, row, column.
    pub async fn reported(&self, table_name: Option<&str>) -> anyhow::Result<Vec<ReportedRow>> {
        let rows = sqlx::query(
            "SELECT table_name, row, col, value, source FROM reported
             WHERE ?1 IS NULL OR table_name = ?1 ORDER BY table_name, row, col",
        )
        .bind(table_name)
        .fetch_all(&self.reader)
        .await
        .with_context(|| self.context("reading reported numbers"))?;
        rows.iter()
            .map(|row| {
                Ok(ReportedRow {
                    table_name: row.try_get("table_name")?,
                    row: row.try_get("row")?,
                    col: row.try_get("col")?,
                    value: row.try_get("value")?,
                    source: row.try_get("source")?,
                })
            })
            .collect()
    }
}
