//! The stat cache behind dataset fingerprints (`file_hashes`).
//!
//! Both directions are one statement each, however many paths: the paths (or rows) travel as a
//! single JSON array bound as one parameter and unpacked by `json_each` (and hits come back the
//! same way), so a lookup of 100,000 paths costs one query rather than 100,000 (or a chunked
//! `IN` list).

use std::collections::HashMap;

use anyhow::Context;

use super::{FileHashRow, Store};

impl Store {
    /// The cached rows of those `paths` that have one.
    pub async fn lookup_file_hashes(
        &self,
        paths: &[String],
    ) -> anyhow::Result<HashMap<String, FileHashRow>> {
        if paths.is_empty() {
            return Ok(HashMap::new());
        }
        // One row holding every hit as a JSON array: decoding 100,000 rows one by one through
        // the driver costs several times more than parsing one string.
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(f.path, f.size, f.mtime_ns, f.inode, f.sha256))
             FROM json_each(?) AS j JOIN file_hashes AS f ON f.path = j.value",
        )
        .bind(serde_json::to_string(paths)?)
        .fetch_one(&self.reader)
        .await
        .with_context(|| self.context("looking up cached file hashes"))?;
        let hits: Vec<(String, i64, i64, i64, String)> =
            serde_json::from_str(packed.as_deref().unwrap_or("[]"))
                .with_context(|| self.context("decoding cached file hashes"))?;
        Ok(hits
            .into_iter()
            .map(|(path, size, mtime_ns, inode, sha256)| {
                (
                    path.clone(),
                    FileHashRow {
                        path,
                        size,
                        mtime_ns,
                        inode,
                        sha256,
                    },
                )
            })
            .collect())
    }

    /// Inserts or replaces `rows` in one transaction. A read-only store keeps no new rows (a
    /// command that only reads leaves the stat cache as it was).
    pub async fn store_file_hashes(&self, rows: &[FileHashRow]) -> anyhow::Result<()> {
        if rows.is_empty() || !self.is_writable() {
            return Ok(());
        }
        let packed: Vec<(&str, i64, i64, i64, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.path.as_str(),
                    r.size,
                    r.mtime_ns,
                    r.inode,
                    r.sha256.as_str(),
                )
            })
            .collect();
        sqlx::query(
            "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, inode, sha256)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    json_extract(value, '$[3]'), json_extract(value, '$[4]')
             FROM json_each(?)",
        )
        .bind(serde_json::to_string(&packed)?)
        .execute(self.writer()?)
        .await
        .with_context(|| self.context("storing file hashes"))?;
        Ok(())
    }
}
