//! Parallel directory walk: every regular file under a root with its stat facts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::BadInput;

/// A regular file found by the walk.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// Path relative to the root, `/`-separated (empty when the root is the file itself).
    pub rel: String,
    /// Absolute path (the stat cache key).
    pub abs: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Inode number.
    pub inode: u64,
}

/// Every regular file under `root` (or `root` itself if it is a file), following symbolic links,
/// sorted by relative path. Other file types, non-UTF-8 names, broken links and directory cycles
/// are errors that name the path.
pub(crate) fn walk(root: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let meta = fs_err::metadata(root)?;
    let mut files = if meta.is_dir() {
        walk_dir(root, "", &[(meta.dev(), meta.ino())])?
    } else {
        vec![file_entry(root, String::new(), &meta)?]
    };
    files.par_sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// Files under `dir` (relative path `rel`), whose ancestors (itself included) are `ancestors`
/// as (device, inode) pairs.
fn walk_dir(dir: &Path, rel: &str, ancestors: &[(u64, u64)]) -> anyhow::Result<Vec<FileEntry>> {
    let entries = fs_err::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    let nested = entries
        .par_iter()
        .map(|entry| {
            let path = entry.path();
            let name = entry.file_name().into_string().map_err(|name| {
                BadInput::msg(format!(
                    "{}: file name {name:?} is not UTF-8; rename it to fingerprint this dataset",
                    dir.display()
                ))
            })?;
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs_err::metadata(&path).map_err(|err| {
                BadInput::msg(format!("{err}: a broken symbolic link? fix or remove it"))
            })?;
            if meta.is_dir() {
                let id = (meta.dev(), meta.ino());
                if ancestors.contains(&id) {
                    return Err(BadInput::msg(format!(
                        "{}: symbolic link cycle (it leads back to a parent directory)",
                        path.display()
                    )));
                }
                let mut below = ancestors.to_vec();
                below.push(id);
                walk_dir(&path, &rel, &below)
            } else {
                Ok(vec![file_entry(&path, rel, &meta)?])
            }
        })
        .collect::<anyhow::Result<Vec<Vec<FileEntry>>>>()?;
    Ok(nested.into_iter().flatten().collect())
}

fn file_entry(path: &Path, rel: String, meta: &std::fs::Metadata) -> anyhow::Result<FileEntry> {
    if !meta.is_file() {
        return Err(BadInput::msg(format!(
            "{}: not a regular file or directory (a socket, pipe or device); datasets hold files",
            path.display()
        )));
    }
    Ok(FileEntry {
        rel,
        abs: path.to_path_buf(),
        size: meta.len(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        inode: meta.ino(),
    })
}
