//! `manifest.json`: the commit marker of a cache entry, listing every file with size and sha256.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fs_err as fs;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::key::CACHE_LAYOUT;

/// Name of the manifest file in each entry.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of an entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Path relative to the entry, with `/` separators.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, lower-case hex.
    pub sha256: String,
}

/// The manifest of an entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Cache layout version.
    pub layout: u64,
    /// The stage key.
    pub key: String,
    /// Stage name when the entry was made (informational).
    pub stage: String,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Every file but the manifest itself, sorted by path.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Hashes every file under `dir` into a manifest.
    pub fn build(dir: &Path, key: &str, stage: &str) -> anyhow::Result<Manifest> {
        let mut paths = Vec::new();
        collect_files(dir, dir, &mut paths)?;
        paths.retain(|(rel, _)| rel != MANIFEST_FILE);
        paths.sort();
        let files = paths
            .par_iter()
            .map(|(rel, abs)| {
                let (size, sha256) = hash_file(abs)?;
                Ok(FileEntry {
                    path: rel.clone(),
                    size,
                    sha256,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Manifest {
            layout: CACHE_LAYOUT,
            key: key.to_string(),
            stage: stage.to_string(),
            created_at: crate::time::now_rfc3339(),
            files,
        })
    }

    /// Reads and parses `dir/manifest.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid manifest", path.display()))
    }

    /// Writes `dir/manifest.json` and fsyncs it.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let mut file = fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        Ok(())
    }

    /// Re-hashes the files of `dir` against this manifest; returns the mismatches, and the
    /// files that are not in it (added after the commit).
    pub fn check(&self, dir: &Path) -> Vec<String> {
        let mut problems = self.changed_files(dir);
        let mut present = Vec::new();
        match collect_files(dir, dir, &mut present) {
            Err(err) => problems.push(format!("cannot list the entry: {err:#}")),
            Ok(()) => {
                for (rel, _) in present {
                    if rel != MANIFEST_FILE && !self.files.iter().any(|f| f.path == rel) {
                        problems.push(format!(
                            "{rel}: not in the manifest (added after the commit)"
                        ));
                    }
                }
            }
        }
        problems
    }

    /// The manifest's files that are missing or differ in size or content.
    fn changed_files(&self, dir: &Path) -> Vec<String> {
        self.files
            .par_iter()
            .filter_map(|entry| match hash_file(&dir.join(&entry.path)) {
                Err(err) => Some(format!("{}: {err:#}", entry.path)),
                Ok((size, _)) if size != entry.size => Some(format!(
                    "{}: size {size}, manifest says {}",
                    entry.path, entry.size
                )),
                Ok((_, sha)) if sha != entry.sha256 => {
                    Some(format!("{}: content changed (sha256 {sha})", entry.path))
                }
                Ok(_) => None,
            })
            .collect()
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        let kind = item.file_type()?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if !kind.is_file() {
            anyhow::bail!(
                "{} is not a regular file (a symbolic link, socket or pipe): a cache entry holds regular files only,                  so that it cannot point outside the results directory; write a copy of the file instead",
                path.display()
            );
        } else {
            let links = std::os::unix::fs::MetadataExt::nlink(&item.metadata()?);
            if links > 1 {
                anyhow::bail!(
                    "{} has {links} hard links: a cache entry holds files of its own, so that nothing outside it changes them; write a copy of the file instead",
                    path.display()
                );
            }
            out.push((relative_name(root, &path)?, path));
        }
    }
    Ok(())
}

/// The `/`-separated path of `path` under `root`; a name that is not UTF-8 is refused, since
/// the manifest records names as text and a lossy one would never match again.
fn relative_name(root: &Path, path: &Path) -> anyhow::Result<String> {
    let rel = path.strip_prefix(root).expect("walk stays under root");
    rel.components()
        .map(|c| {
            c.as_os_str().to_str().map(str::to_string).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has a file name that is not UTF-8: a cache entry records names as text; rename it",
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(|parts| parts.join("/"))
}

/// Size and sha256 of a file, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Trees with more entries than this are made durable by one `syncfs` of their filesystem
/// rather than an fsync per file (50,000 fsyncs in a row took minutes).
const SYNCFS_ABOVE: usize = 256;

/// Makes every file and directory under `dir`, and `dir` itself, durable: one `syncfs(2)` for a
/// large tree (it writes back the whole filesystem, which holds the tree), else (or when
/// `syncfs` fails) an fsync of each file, in parallel so the journal can batch them, then of
/// each directory, deepest first.
pub fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    let mut next = 0;
    while next < dirs.len() {
        for item in fs::read_dir(&dirs[next])? {
            let item = item?;
            if item.file_type()?.is_dir() {
                dirs.push(item.path());
            } else {
                files.push(item.path());
            }
        }
        next += 1;
    }
    if files.len() + dirs.len() > SYNCFS_ABOVE {
        match syncfs(dir) {
            Ok(()) => return Ok(()),
            Err(err) => tracing::debug!("syncfs {}: {err}; fsyncing each file", dir.display()),
        }
    }
    files
        .par_iter()
        .try_for_each(|file| fs::File::open(file)?.sync_all())?;
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `syncfs(2)` on the filesystem holding `path`.
fn syncfs(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)?;
    // SAFETY: the descriptor is open for the duration of the call.
    let status = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// fsyncs a directory, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_and_names_that_are_not_utf8_are_refused_and_added_files_reported() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big.bin"), "data").unwrap();
        std::fs::hard_link(
            outside.path().join("big.bin"),
            dir.path().join("linked.bin"),
        )
        .unwrap();
        let message = format!("{:#}", Manifest::build(dir.path(), "k", "s").unwrap_err());
        assert!(message.contains("linked.bin has 2 hard links"), "{message}");
        std::fs::remove_file(dir.path().join("linked.bin")).unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(dir.path().join(odd), "x").unwrap();
        let message = format!("{:#}", Manifest::build(dir.path(), "k", "s").unwrap_err());
        assert!(message.contains("not UTF-8"), "{message}");
        std::fs::remove_file(dir.path().join(odd)).unwrap();
        std::fs::write(dir.path().join("metrics.json"), "{}").unwrap();
        let manifest = Manifest::build(dir.path(), "k", "s").unwrap();
        manifest.write(dir.path()).unwrap();
        assert!(manifest.check(dir.path()).is_empty());
        std::fs::write(dir.path().join("extra.txt"), "planted").unwrap();
        assert_eq!(
            manifest.check(dir.path()),
            ["extra.txt: not in the manifest (added after the commit)"]
        );
    }

    #[test]
    fn a_symbolic_link_in_an_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("leak")).unwrap();
        let message = format!("{:#}", Manifest::build(dir.path(), "k", "s").unwrap_err());
        assert!(
            message.contains("leak") && message.contains("not a regular file"),
            "{message}"
        );
    }
}
