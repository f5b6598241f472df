//! Dataset fingerprints and their stat cache, on real files and a real database.

use std::fs::{self, File, FileTimes};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rsfm_harness::fingerprint::{
    fingerprint_tree, fingerprint_tree_with_stats, sha256_file, FingerprintStats,
};
use rsfm_harness::store::Store;
use sha2::{Digest, Sha256};

/// An hour ago: old enough for the stat cache to trust the file.
fn an_hour_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3600)
}

fn set_mtime(path: &Path, when: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(when))
        .unwrap();
}

/// Writes `files` (relative path, content) under `root`, with an mtime an hour ago.
fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, content) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        set_mtime(&path, an_hour_ago());
    }
}

const TREE: &[(&str, &[u8])] = &[
    ("images/P0001.png", b"png bytes"),
    ("images/P0002.png", b"other png bytes"),
    ("labelTxt/P0001.txt", b"1 2 3 4 5 6 7 8 plane 0\n"),
    ("README", b""),
];

#[tokio::test]
async fn the_fingerprint_is_the_documented_manifest_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_tree(&root, TREE);
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();
    let fp = fingerprint_tree(&root, &store).await.unwrap();

    let mut sorted: Vec<_> = TREE.to_vec();
    sorted.sort_by_key(|(rel, _)| *rel);
    let mut manifest = String::from("rsfm-fingerprint-v1\n");
    for (rel, content) in &sorted {
        let sha = hex::encode(Sha256::digest(content));
        manifest.push_str(&format!("[\"{rel}\",{},\"{sha}\"]\n", content.len()));
    }
    assert_eq!(fp.sha256, hex::encode(Sha256::digest(manifest.as_bytes())));
    assert_eq!(fp.files, 4);
    assert_eq!(
        fp.bytes,
        TREE.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
    );
    assert_eq!(
        sha256_file(&root.join("README")).unwrap(),
        hex::encode(Sha256::digest(b""))
    );
}

#[tokio::test]
async fn same_tree_same_hash_content_change_new_hash_touch_served_from_cache() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_tree(&root, TREE);
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();

    let (first, stats) = fingerprint_tree_with_stats(&root, &store).await.unwrap();
    assert_eq!(
        stats,
        FingerprintStats {
            cache_hits: 0,
            hashed_files: 4,
            hashed_bytes: first.bytes,
            cached_rows: 4
        }
    );

    let (second, stats) = fingerprint_tree_with_stats(&root, &store).await.unwrap();
    assert_eq!(second, first, "same tree, same fingerprint");
    assert_eq!(
        stats,
        FingerprintStats {
            cache_hits: 4,
            hashed_files: 0,
            hashed_bytes: 0,
            cached_rows: 0
        }
    );

    // A copy elsewhere (other paths, other inodes) has the same fingerprint, hashed afresh.
    let copy = dir.path().join("copy");
    write_tree(&copy, TREE);
    let (copied, stats) = fingerprint_tree_with_stats(&copy, &store).await.unwrap();
    assert_eq!(copied, first);
    assert_eq!(stats.hashed_files, 4);

    // mtime-only change: the file is read again, the fingerprint stays, and the new stat is cached.
    let touched = root.join("images/P0001.png");
    set_mtime(&touched, an_hour_ago() - Duration::from_secs(60));
    let (after_touch, stats) = fingerprint_tree_with_stats(&root, &store).await.unwrap();
    assert_eq!(after_touch, first);
    assert_eq!(
        (stats.cache_hits, stats.hashed_files, stats.cached_rows),
        (3, 1, 1)
    );
    let (_, stats) = fingerprint_tree_with_stats(&root, &store).await.unwrap();
    assert_eq!(
        stats.cache_hits, 4,
        "the touched file is served from the cache again"
    );

    // Same-size content change with the old mtime restored: the inode changes on replace.
    let replacement = root.join("images/tmp");
    fs::write(&replacement, b"PNG BYTES").unwrap();
    set_mtime(&replacement, an_hour_ago());
    fs::rename(&replacement, &touched).unwrap();
    let changed = fingerprint_tree(&root, &store).await.unwrap();
    assert_ne!(
        changed.sha256, first.sha256,
        "content change, new fingerprint"
    );

    // An in-place rewrite of different length.
    fs::write(root.join("README"), b"now with text").unwrap();
    let (rewritten, stats) = fingerprint_tree_with_stats(&root, &store).await.unwrap();
    assert_ne!(rewritten.sha256, changed.sha256);
    assert_eq!(stats.hashed_files, 1);
    assert_eq!(
        stats.cached_rows, 0,
        "a file modified just now is hashed but not cached"
    );

    // A renamed file changes the fingerprint; a new empty directory does not.
    fs::create_dir(root.join("empty")).unwrap();
    assert_eq!(fingerprint_tree(&root, &store).await.unwrap(), rewritten);
    fs::rename(
        root.join("labelTxt/P0001.txt"),
        root.join("labelTxt/P0009.txt"),
    )
    .unwrap();
    assert_ne!(
        fingerprint_tree(&root, &store).await.unwrap().sha256,
        rewritten.sha256
    );
}

#[tokio::test]
async fn single_files_links_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_tree(&root, TREE);
    let store = Store::open(&dir.path().join("rsfm.db")).await.unwrap();

    let single = fingerprint_tree(&root.join("images/P0001.png"), &store)
        .await
        .unwrap();
    assert_eq!((single.files, single.bytes), (1, 9));
    let manifest = format!(
        "rsfm-fingerprint-v1\n[\"\",9,\"{}\"]\n",
        hex::encode(Sha256::digest(b"png bytes"))
    );
    assert_eq!(
        single.sha256,
        hex::encode(Sha256::digest(manifest.as_bytes()))
    );

    // Symbolic links are followed: a linked tree fingerprints like a copy.
    let linked = dir.path().join("linked");
    fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(root.join("images"), linked.join("images")).unwrap();
    std::os::unix::fs::symlink(root.join("labelTxt"), linked.join("labelTxt")).unwrap();
    std::os::unix::fs::symlink(root.join("README"), linked.join("README")).unwrap();
    assert_eq!(
        fingerprint_tree(&linked, &store).await.unwrap(),
        fingerprint_tree(&root, &store).await.unwrap()
    );

    std::os::unix::fs::symlink(&linked, linked.join("images/loop")).unwrap();
    let err = format!("{:#}", fingerprint_tree(&linked, &store).await.unwrap_err());
    assert!(err.contains("cycle") && err.contains("loop"), "{err}");
    fs::remove_file(root.join("images/loop")).unwrap();

    std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("dangling")).unwrap();
    let err = format!("{:#}", fingerprint_tree(&root, &store).await.unwrap_err());
    assert!(
        err.contains("dangling") && err.contains("broken symbolic link"),
        "{err}"
    );

    let err = format!(
        "{:#}",
        fingerprint_tree(&dir.path().join("absent"), &store)
            .await
            .unwrap_err()
    );
    assert!(err.contains("absent"), "{err}");
}
