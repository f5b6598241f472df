//! The content-addressed stage cache: `results/cache/ab/abcdef…/`.
//!
//! An entry is built in `results/tmp/`, gets `manifest.json` (every file with size and sha256)
//! written last, is fsynced and renamed into place. A directory without a valid manifest is not
//! an entry. The key itself carries the layout version (see [`crate::plan::key::CACHE_LAYOUT`]).

mod manifest;
mod snapshot;

use std::path::{Path, PathBuf};

use anyhow::Context;
use fs_err as fs;
use serde::Serialize;

pub use manifest::{FileEntry, Manifest, MANIFEST_FILE};
pub use snapshot::TreeSnapshot;

use crate::plan::key::{KeyManifest, CACHE_LAYOUT};
use crate::process::{host_name, pid_is_alive};

/// File in each entry holding the stage description.
pub const STAGE_FILE: &str = "stage.json";
/// File in each entry holding the key manifest.
pub const KEY_FILE: &str = "key.json";
/// File in each entry holding the recipe that repeats it (`crate::plan::replay`).
pub const RESOLVED_RECIPE_FILE: &str = "recipe.resolved.toml";

/// The cache under one results directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    tmp: PathBuf,
}

/// A committed cache entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// One line of `rsfm cache ls`.
#[derive(Debug, Clone, Serialize)]
pub struct EntrySummary {
    /// Stage key.
    pub key: String,
    /// Stage name when the entry was made.
    pub stage: String,
    /// Number of files.
    pub files: usize,
    /// Total bytes.
    pub bytes: u64,
    /// Creation time (RFC 3339, UTC).
    pub created_at: String,
}

impl Cache {
    /// Opens (creating when needed) the cache of `results_dir`, which must be an rsfm results
    /// folder or become one ([`crate::results_dir::claim`]: a folder holding files rsfm did not
    /// make is refused as bad input).
    pub fn open(results_dir: &Path) -> anyhow::Result<Cache> {
        crate::results_dir::claim(results_dir)?;
        let root = results_dir.join("cache");
        let tmp = results_dir.join("tmp");
        fs::create_dir_all(&root)?;
        fs::create_dir_all(&tmp)?;
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            fs::write(
                &tag,
                "Signature: 8a477f597d28d172789f06886806bc55\n# rsfm stage cache: see https://bford.info/cachedir/\n",
            )?;
            fs::write(root.join(".gitignore"), "*\n")?;
        }
        Ok(Cache { root, tmp })
    }

    /// Directory an entry with `key` lives in (whether or not it exists).
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(&key[..2.min(key.len())]).join(key)
    }

    /// The committed entry for `key`, if one with a valid manifest exists.
    pub fn lookup(&self, key: &str) -> Option<Entry> {
        let dir = self.entry_dir(key);
        let manifest = Manifest::read(&dir).ok()?;
        (manifest.key == key && manifest.layout == CACHE_LAYOUT).then_some(Entry { dir, manifest })
    }

    /// A fresh, empty build directory for `key` under `tmp/`, named `KEY.HOST.PID.NANOS` after
    /// this process, so that a sweep on another host of a shared filesystem leaves it alone.
    pub fn new_build_dir(&self, key: &str) -> anyhow::Result<PathBuf> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = self.tmp.join(format!(
            "{key}.{}.{}.{nanos}",
            host_name(),
            std::process::id()
        ));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Commits a finished build directory as the entry for `key`: writes `stage.json`,
    /// `key.json` and, last, `manifest.json`, fsyncs, and renames it into place.
    pub fn commit(
        &self,
        build_dir: &Path,
        key: &KeyManifest,
        stage: &serde_json::Value,
        stage_name: &str,
    ) -> anyhow::Result<Entry> {
        fs::write(
            build_dir.join(STAGE_FILE),
            serde_json::to_vec_pretty(stage)?,
        )?;
        fs::write(build_dir.join(KEY_FILE), serde_json::to_vec_pretty(key)?)?;
        let manifest = Manifest::build(build_dir, &key.key, stage_name)?;
        manifest.write(build_dir)?;
        manifest::sync_tree(build_dir)?;
        let dir = self.entry_dir(&key.key);
        let parent = dir.parent().expect("entry dirs have a parent");
        fs::create_dir_all(parent)?;
        if self.lookup(&key.key).is_some() {
            // Another run committed the same key first; its content is equivalent.
            fs::remove_dir_all(build_dir)?;
        } else {
            if dir.exists() {
                // A directory without a valid manifest is not an entry: replace it.
                fs::remove_dir_all(&dir)?;
            }
            fs::rename(build_dir, &dir)?;
            manifest::sync_dir(parent)?;
        }
        self.lookup(&key.key)
            .with_context(|| format!("cache entry {} vanished after commit", dir.display()))
    }

    /// Re-hashes the entry of `key` against its manifest; returns what does not match (a missing
    /// or invalid manifest is a problem too). Empty: the entry is sound.
    pub fn check_entry(&self, key: &str) -> Vec<String> {
        let dir = self.entry_dir(key);
        match Manifest::read(&dir) {
            Err(err) => vec![format!("no valid manifest: {err:#}")],
            Ok(manifest) => manifest.check(&dir),
        }
    }

    /// Moves the entry of `key` out of the cache into `damaged/` beside it (kept for a look, never
    /// used again); returns where it went.
    pub fn quarantine(&self, key: &str) -> anyhow::Result<PathBuf> {
        let results_dir = self.root.parent().expect("the cache root has a parent");
        let dest = results_dir.join("damaged").join(format!(
            "{key}.{}",
            crate::time::now_rfc3339().replace(':', "")
        ));
        fs::create_dir_all(dest.parent().expect("has a parent"))?;
        fs::rename(self.entry_dir(key), &dest)?;
        Ok(dest)
    }

    /// Removes the build directories in `tmp/` that processes of this host left when they
    /// died; returns how many. Only directories named as [`Self::new_build_dir`] names them
    /// (`KEY.HOST.PID.NANOS`, a stage key first) are considered: anything else in `tmp/` is not
    /// rsfm's and stays, and so do build directories of other hosts, whose processes cannot be
    /// checked from here.
    pub fn sweep_orphans(&self) -> anyhow::Result<usize> {
        let host = host_name();
        let mut swept = 0;
        for item in fs::read_dir(&self.tmp)? {
            let path = item?.path();
            let owner = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(build_dir_owner);
            if let Some((owner_host, pid)) = owner {
                if owner_host == host && !pid_is_alive(pid) && path.is_dir() {
                    fs::remove_dir_all(&path)?;
                    swept += 1;
                }
            }
        }
        Ok(swept)
    }

    /// The key directories under the cache root that rsfm made, valid or not: a stage key's
    /// name in the shard of its first two characters. Anything else is not rsfm's.
    fn key_dirs(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut dirs = Vec::new();
        for (shard, path) in self.cache_children()? {
            if !path.is_dir() {
                continue;
            }
            for item in fs::read_dir(&path)? {
                let path = item?.path();
                if let Some(key) = path.file_name().and_then(|n| n.to_str()) {
                    if is_stage_key(key) && key.starts_with(&shard) && path.is_dir() {
                        dirs.push((key.to_string(), path.clone()));
                    }
                }
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// The shard folders of the cache root (two lowercase hex characters), with their paths.
    fn cache_children(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut shards = Vec::new();
        for item in fs::read_dir(&self.root)? {
            let path = item?.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if name.len() == 2 && name.bytes().all(is_lower_hex) {
                    shards.push((name.to_string(), path.clone()));
                }
            }
        }
        Ok(shards)
    }

    /// Summaries of all valid entries.
    pub fn list(&self) -> anyhow::Result<Vec<EntrySummary>> {
        Ok(self
            .key_dirs()?
            .into_iter()
            .filter_map(|(key, _)| self.lookup(&key))
            .map(|entry| EntrySummary {
                key: entry.manifest.key.clone(),
                stage: entry.manifest.stage.clone(),
                files: entry.manifest.files.len(),
                bytes: entry.manifest.files.iter().map(|f| f.size).sum(),
                created_at: entry.manifest.created_at.clone(),
            })
            .collect())
    }

    /// Re-hashes every entry; returns `(key, problem)` for each entry that does not match.
    pub fn verify(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut problems = Vec::new();
        for (key, dir) in self.key_dirs()? {
            match Manifest::read(&dir) {
                Err(err) => problems.push((key, format!("no valid manifest: {err:#}"))),
                Ok(manifest) => {
                    for problem in manifest.check(&dir) {
                        problems.push((key.clone(), problem));
                    }
                }
            }
        }
        Ok(problems)
    }

    /// Removes every entry not in `keep`, and every damaged one (a key directory whose manifest
    /// is gone or invalid but which holds the `stage.json` rsfm writes before it); returns the
    /// removed keys. Nothing else under the cache root is touched.
    pub fn gc(&self, keep: &std::collections::HashSet<String>) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for (key, dir) in self.key_dirs()? {
            let collectable = match self.lookup(&key) {
                Some(_) => !keep.contains(&key),
                None => dir.join(STAGE_FILE).is_file(),
            };
            if collectable {
                fs::remove_dir_all(&dir)?;
                removed.push(key);
            }
        }
        Ok(removed)
    }
}

/// Whether `name` is a stage key: 64 lowercase hex characters (a sha256).
pub fn is_stage_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(is_lower_hex)
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// The host and pid in a build directory name `KEY.HOST.PID.NANOS` (the host may hold dots;
/// KEY is a stage key, NANOS digits); None for any other name.
fn build_dir_owner(name: &str) -> Option<(&str, i32)> {
    let (key, rest) = name.split_once('.')?;
    let (rest, nanos) = rest.rsplit_once('.')?;
    let (host, pid) = rest.rsplit_once('.')?;
    if !is_stage_key(key) || nanos.is_empty() || !nanos.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, pid.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

    #[test]
    fn the_sweep_removes_dead_local_builds_only() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::open(results.path()).unwrap();
        let live = cache.new_build_dir(KEY).unwrap();
        let tmp = results.path().join("tmp");
        // pid 0 is never a live build's owner.
        let dead = tmp.join(format!("{KEY}.{}.0.1", host_name()));
        let other_host = tmp.join(format!("{KEY}.node-7.cluster.example.0.1"));
        let stray = tmp.join("not-a-build-dir");
        let lookalike = tmp.join(format!("abc.{}.0.1", host_name()));
        for dir in [&dead, &other_host, &stray, &lookalike] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(tmp.join("notes.txt"), "mine").unwrap();
        assert_eq!(cache.sweep_orphans().unwrap(), 1);
        assert!(live.exists(), "a live build was swept");
        assert!(other_host.exists(), "another host's build was swept");
        assert!(!dead.exists());
        assert!(stray.exists() && lookalike.exists() && tmp.join("notes.txt").exists());
        let owned = format!("{KEY}.node.a.b.42.7");
        assert_eq!(build_dir_owner(&owned), Some(("node.a.b", 42)));
    }

    #[test]
    fn gc_collects_rsfm_entries_only() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::open(results.path()).unwrap();
        let root = results.path().join("cache");
        let damaged = root.join(&KEY[..2]).join(KEY);
        fs::create_dir_all(&damaged).unwrap();
        fs::write(damaged.join(STAGE_FILE), "{}").unwrap();
        let other_key = KEY.replace('a', "b");
        let foreign = [
            root.join("mine/notes"),
            root.join("ab/not-a-key"),
            root.join(&other_key[..2]).join(&other_key),
            root.join("zz").join(KEY),
        ];
        for dir in &foreign {
            fs::create_dir_all(dir).unwrap();
        }
        let removed = cache.gc(&Default::default()).unwrap();
        assert_eq!(removed, [KEY]);
        assert!(!damaged.exists());
        for dir in &foreign {
            assert!(dir.exists(), "{} was removed", dir.display());
        }
    }
}
