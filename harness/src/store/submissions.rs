//! Archives written for the evaluation servers (`rsfm submit`) and the scores read back from
//! their replies (`rsfm ingest`).

use anyhow::Context;
use serde::Serialize;
use sqlx::Row;

use super::Store;

/// An archive `rsfm submit` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    /// Row id.
    pub id: i64,
    /// The stage whose predictions it packs.
    pub stage_key: String,
    /// `dota-v2` or `loveda`.
    pub server: String,
    /// Where it was written.
    pub archive_path: String,
    /// Its sha256.
    pub archive_sha256: String,
    /// Test images it covers.
    pub images: i64,
    /// When it was written.
    pub created_at: String,
    /// sha256 of the ingested reply, once ingested.
    pub reply_sha256: Option<String>,
}

/// A reply to ingest: its file, its sha256 and the scores read from it (fractions).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<'a> {
    /// The reply file.
    pub path: &'a str,
    /// Its sha256.
    pub sha256: &'a str,
    /// `(metric, value)` pairs.
    pub scores: &'a [(String, f64)],
}

impl Store {
    /// Records an archive of `stage_key`'s predictions for `server`; returns its id.
    pub async fn record_submission(
        &self,
        stage_key: &str,
        server: &str,
        archive_path: &str,
        archive_sha256: &str,
        images: usize,
    ) -> anyhow::Result<i64> {
        let id = sqlx::query(
            "INSERT INTO submissions (stage_key, server, archive_path, archive_sha256, images, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(stage_key)
        .bind(server)
        .bind(archive_path)
        .bind(archive_sha256)
        .bind(images as i64)
        .bind(crate::time::now_rfc3339())
        .fetch_one(self.writer()?)
        .await
        .with_context(|| self.context("recording a submission"))?
        .try_get("id")?;
        Ok(id)
    }

    /// The archives of `stage_key` for `server`, newest first.
    pub async fn submissions(
        &self,
        stage_key: &str,
        server: &str,
    ) -> anyhow::Result<Vec<Submission>> {
        let rows = sqlx::query(
            "SELECT id, stage_key, server, archive_path, archive_sha256, images, created_at, reply_sha256
             FROM submissions WHERE stage_key = ? AND server = ? ORDER BY id DESC",
        )
        .bind(stage_key)
        .bind(server)
        .fetch_all(&self.reader)
        .await
        .with_context(|| self.context("reading submissions"))?;
        rows.iter()
            .map(|row| {
                Ok(Submission {
                    id: row.try_get("id")?,
                    stage_key: row.try_get("stage_key")?,
                    server: row.try_get("server")?,
                    archive_path: row.try_get("archive_path")?,
                    archive_sha256: row.try_get("archive_sha256")?,
                    images: row.try_get("images")?,
                    created_at: row.try_get("created_at")?,
                    reply_sha256: row.try_get("reply_sha256")?,
                })
            })
            .collect()
    }

    /// Stores the scores of `reply` to `submission`, in one transaction: they replace the
    /// submission's earlier scores and become final metrics of its stage.
    pub async fn ingest_reply(
        &self,
        submission: &Submission,
        reply: &Reply<'_>,
    ) -> anyhow::Result<()> {
        let mut tx = self.writer()?.begin().await?;
        sqlx::query("DELETE FROM server_scores WHERE submission_id = ?")
            .bind(submission.id)
            .execute(&mut *tx)
            .await?;
        for (name, value) in reply.scores {
            sqlx::query("INSERT INTO server_scores (submission_id, name, value) VALUES (?, ?, ?)")
                .bind(submission.id)
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT OR REPLACE INTO metrics (stage_key, name, value, step) VALUES (?, ?, ?, NULL)",
            )
            .bind(&submission.stage_key)
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE submissions SET reply_path = ?, reply_sha256 = ?, ingested_at = ? WHERE id = ?",
        )
        .bind(reply.path)
        .bind(reply.sha256)
        .bind(crate::time::now_rfc3339())
        .bind(submission.id)
        .execute(&mut *tx)
        .await?;
        tx.commit()
            .await
            .with_context(|| self.context(&format!("storing the scores of {}", reply.path)))?;
        Ok(())
    }
}
