//! What a stage's input entries look like on disk before the stage runs, to tell afterwards
//! whether it changed them: the stat of every file and folder (size, modification and change
//! times, inode), taken twice, no content read.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fs_err as fs;

/// The stat of every file and folder under one entry, by relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSnapshot {
    root: PathBuf,
    items: Vec<(String, FileStat)>,
}

/// What changes when a file is written, replaced, added to or touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStat {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl TreeSnapshot {
    /// Stats every file and folder under `root`.
    pub fn take(root: &Path) -> anyhow::Result<TreeSnapshot> {
        let mut items = Vec::new();
        walk(root, root, &mut items)?;
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(TreeSnapshot {
            root: root.to_path_buf(),
            items,
        })
    }

    /// The first path under the root that was added, removed or changed since `self` was
    /// taken, described; None when the tree is as it was.
    pub fn first_change(&self) -> anyhow::Result<Option<String>> {
        let now = TreeSnapshot::take(&self.root)?;
        let mut before = self.items.iter().peekable();
        let mut after = now.items.iter().peekable();
        loop {
            return Ok(match (before.peek(), after.peek()) {
                (None, None) => None,
                (Some((path, _)), None) => Some(format!("{path} was removed")),
                (None, Some((path, _))) => Some(format!("{path} was added")),
                (Some((a, sa)), Some((b, sb))) => {
                    if a < b {
                        Some(format!("{a} was removed"))
                    } else if b < a {
                        Some(format!("{b} was added"))
                    } else if sa != sb {
                        Some(format!("{a} was changed"))
                    } else {
                        before.next();
                        after.next();
                        continue;
                    }
                }
            });
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, FileStat)>) -> anyhow::Result<()> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        let meta = fs::symlink_metadata(&path)?;
        let rel = path
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_string_lossy()
            .into_owned();
        out.push((
            rel,
            FileStat {
                len: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                ino: meta.ino(),
            },
        ));
        if meta.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_additions_and_removals_are_seen_reads_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        let snapshot = TreeSnapshot::take(dir.path()).unwrap();
        let _ = std::fs::read(dir.path().join("sub/a.txt")).unwrap();
        assert_eq!(snapshot.first_change().unwrap(), None);
        std::fs::write(dir.path().join("sub/a.txt"), "changed").unwrap();
        assert_eq!(
            snapshot.first_change().unwrap().as_deref(),
            Some("sub/a.txt was changed")
        );
        let snapshot = TreeSnapshot::take(dir.path()).unwrap();
        std::fs::write(dir.path().join("planted.txt"), "x").unwrap();
        assert_eq!(
            snapshot.first_change().unwrap().as_deref(),
            Some("planted.txt was added")
        );
        let snapshot = TreeSnapshot::take(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("sub/a.txt")).unwrap();
        assert!(snapshot.first_change().unwrap().unwrap().contains("was"));
    }
}
