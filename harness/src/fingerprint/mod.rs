//! Dataset fingerprints: the sha256 of a canonical manifest of a file tree, with a stat cache so
//! an unchanged tree is re-fingerprinted from `stat` alone.
//!
//! **Manifest.** The line `rsfm-fingerprint-v1`, then one line per regular file, sorted by
//! relative path (byte order): the JSON array `[path, size, sha256]`, where `path` is relative to
//! the root with `/` separators (empty when the root is a single file), `size` in bytes and
//! `sha256` the lowercase hex of the content. Lines end with `\n`. The fingerprint is the sha256
//! of this text. Names of the root itself, times, owners and permissions do not enter it.
//!
//! **Symbolic links are followed**: a link to a file counts as that file under the link's name,
//! a link to a directory as that directory's tree. A broken link, a cycle, a socket, pipe or
//! device, or a file name that is not UTF-8 is an error naming the path. Hidden files count.
//!
//! **Stat cache.** `file_hashes` maps an absolute path to (size, mtime, inode, sha256). A pass
//! stats every file (in parallel), looks all paths up in one query, hashes only the files whose
//! size, mtime or inode differ (in parallel, on all cores), and stores the new rows in one
//! transaction. A file modified within [`RACY_WINDOW`] of the pass's start is hashed but not
//! cached, since a same-size rewrite within the filesystem's timestamp granularity would leave
//! its stat unchanged.

mod hash;
mod walk;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use hash::sha256_file;

use crate::store::{FileHashRow, Store};
use walk::FileEntry;

/// First line of the manifest; changes if its format does.
const MANIFEST_VERSION: &str = "rsfm-fingerprint-v1";

/// Files modified this close to the start of a pass are not cached (see the module docs).
pub const RACY_WINDOW: Duration = Duration::from_secs(1);

/// The fingerprint of a file tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// sha256 (hex) of the manifest.
    pub sha256: String,
    /// Number of files.
    pub files: u64,
    /// Total size of the files in bytes.
    pub bytes: u64,
}

/// What a fingerprint pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FingerprintStats {
    /// Files whose hash came from the stat cache.
    pub cache_hits: u64,
    /// Files read and hashed.
    pub hashed_files: u64,
    /// Bytes read and hashed.
    pub hashed_bytes: u64,
    /// Rows written to the stat cache.
    pub cached_rows: u64,
}

/// The fingerprint of the tree (or single file) at `root`, using and updating the stat cache in
/// `store`.
pub async fn fingerprint_tree(root: &Path, store: &Store) -> anyhow::Result<Fingerprint> {
    fingerprint_tree_with_stats(root, store)
        .await
        .map(|(fingerprint, _)| fingerprint)
}

/// [`fingerprint_tree`], also returning what the pass did (cache hits, bytes hashed).
pub async fn fingerprint_tree_with_stats(
    root: &Path,
    store: &Store,
) -> anyhow::Result<(Fingerprint, FingerprintStats)> {
    let started = SystemTime::now();
    let root =
        fs_err::canonicalize(root).context("fingerprinting a dataset: does its root exist?")?;
    let walked_root = root.clone();
    let files = tokio::task::spawn_blocking(move || walk::walk(&walked_root)).await??;
    let (hashes, stats) = hash_with_stat_cache(&files, store, started).await?;

    let mut manifest = Sha256::new();
    manifest.update(MANIFEST_VERSION.as_bytes());
    manifest.update(b"\n");
    for (file, sha256) in files.iter().zip(&hashes) {
        let line = serde_json::to_string(&(&file.rel, file.size, sha256))?;
        manifest.update(line.as_bytes());
        manifest.update(b"\n");
    }
    let fingerprint = Fingerprint {
        sha256: hex::encode(manifest.finalize()),
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.size).sum(),
    };
    Ok((fingerprint, stats))
}

/// The sha256 of the file at `path` (symbolic links followed), through the stat cache: an
/// unchanged file costs one `stat` and one indexed lookup.
pub async fn sha256_file_cached(path: &Path, store: &Store) -> anyhow::Result<String> {
    let started = SystemTime::now();
    let path = fs_err::canonicalize(path)?;
    let files = tokio::task::spawn_blocking(move || walk::walk(&path)).await??;
    let (mut hashes, _) = hash_with_stat_cache(&files, store, started).await?;
    match (hashes.pop(), hashes.is_empty()) {
        (Some(sha256), true) => Ok(sha256),
        _ => anyhow::bail!("expected one file, found a directory"),
    }
}

/// The sha256 of each of `files`: from the stat cache where size, mtime and inode still match,
/// else read and hashed (in parallel) and stored back, unless modified within [`RACY_WINDOW`]
/// of `started`.
async fn hash_with_stat_cache(
    files: &[FileEntry],
    store: &Store,
    started: SystemTime,
) -> anyhow::Result<(Vec<String>, FingerprintStats)> {
    let keys = files
        .iter()
        .map(|f| path_key(&f.abs))
        .collect::<anyhow::Result<Vec<String>>>()?;
    let cached = store.lookup_file_hashes(&keys).await?;

    let mut hashes: Vec<Option<String>> = files
        .iter()
        .zip(&keys)
        .map(|(file, key)| {
            cached
                .get(key)
                .filter(|row| still_matches(row, file))
                .map(|row| row.sha256.clone())
        })
        .collect();
    let misses: Vec<usize> = (0..files.len()).filter(|&i| hashes[i].is_none()).collect();
    let mut stats = FingerprintStats {
        cache_hits: (files.len() - misses.len()) as u64,
        ..Default::default()
    };

    let to_hash: Vec<FileEntry> = misses.iter().map(|&i| files[i].clone()).collect();
    let hashed = tokio::task::spawn_blocking(move || hash_all(&to_hash)).await??;
    let racy_after = unix_ns(started.checked_sub(RACY_WINDOW).unwrap_or(UNIX_EPOCH));
    let mut new_rows = Vec::new();
    for (&i, sha256) in misses.iter().zip(hashed) {
        let file = &files[i];
        stats.hashed_files += 1;
        stats.hashed_bytes += file.size;
        if file.mtime_ns < racy_after {
            new_rows.push(FileHashRow {
                path: keys[i].clone(),
                size: file.size as i64,
                mtime_ns: file.mtime_ns,
                inode: file.inode as i64,
                sha256: sha256.clone(),
            });
        }
        hashes[i] = Some(sha256);
    }
    store.store_file_hashes(&new_rows).await?;
    stats.cached_rows = new_rows.len() as u64;
    Ok((hashes.into_iter().flatten().collect(), stats))
}

/// Whether a cached row still describes `file` (same size, mtime and inode).
fn still_matches(row: &FileHashRow, file: &FileEntry) -> bool {
    row.size == file.size as i64 && row.mtime_ns == file.mtime_ns && row.inode == file.inode as i64
}

/// Hashes `files` in parallel on all cores; a file whose length changed since its stat is an error.
fn hash_all(files: &[FileEntry]) -> anyhow::Result<Vec<String>> {
    files
        .par_iter()
        .map_init(
            || vec![0u8; hash::READ_BUFFER],
            |buffer, file| {
                let (sha256, read) = hash::hash_file(&file.abs, buffer)?;
                if read != file.size {
                    anyhow::bail!(
                        "{} changed while it was being fingerprinted ({} bytes, then {read}); rerun when it is stable",
                        file.abs.display(),
                        file.size
                    );
                }
                Ok(sha256)
            },
        )
        .collect()
}

/// The stat cache key of a path (its UTF-8 text).
fn path_key(path: &Path) -> anyhow::Result<String> {
    path.to_str().map(str::to_string).with_context(|| {
        format!(
            "{}: path is not UTF-8; rename it to fingerprint this dataset",
            path.display()
        )
    })
}

fn unix_ns(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
