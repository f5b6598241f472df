//! Per-key run locks under `results/locks/`, so two `rsfm run` on one results dir never run the
//! same key twice.
//!
//! The lock is an exclusive `flock` on `locks/<key>.lock`: the kernel releases it when its holder
//! dies, however it dies, so a lock left by a killed run is broken automatically. The file records
//! the holder's pid, host and boot id for `rsfm status` and for messages.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::{boot_id, host_name};

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockOwner {
    /// Process id of the holder.
    pub pid: u32,
    /// Host it runs on.
    pub host: String,
    /// Boot id of that host when the lock was taken.
    pub boot_id: String,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct KeyLock {
    file: File,
}

/// Result of trying to take a lock.
#[derive(Debug)]
pub enum TryLock {
    /// The lock is ours.
    Acquired(KeyLock),
    /// A live process holds it.
    Held(Option<LockOwner>),
}

/// Who holds a key's lock, for messages: `pid N on HOST`, or `another run` when its record
/// could not be read.
pub fn holder(owner: Option<&LockOwner>) -> String {
    owner.map_or_else(
        || "another run".to_string(),
        |o| format!("pid {} on {}", o.pid, o.host),
    )
}

/// The lock every `rsfm run` holds shared for its whole life and `rsfm cache gc` takes
/// exclusively: a gc never removes an entry that a live run made or still needs.
pub const RESULTS_IN_USE: &str = "in-use";

/// A shared hold on a lock; released when dropped. Shared holders write no owner record.
#[derive(Debug)]
pub struct SharedLock {
    file: File,
}

/// Takes the lock `name` shared, waiting while a process holds it exclusively (a gc, which
/// is short).
pub fn lock_shared(results_dir: &Path, name: &str) -> anyhow::Result<SharedLock> {
    let file = open_lock_file(results_dir, name)?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        anyhow::bail!(
            "cannot lock {}: {err}",
            lock_path(results_dir, name).display()
        );
    }
    Ok(SharedLock { file })
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        // SAFETY: unlocking a descriptor we own.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn open_lock_file(results_dir: &Path, name: &str) -> anyhow::Result<File> {
    let path = lock_path(results_dir, name);
    fs_err::create_dir_all(path.parent().expect("lock paths have a parent"))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open lock {}: {e}", path.display()))
}

/// Path of the lock file for `name` (a stage key or `run`) under `results_dir`.
pub fn lock_path(results_dir: &Path, name: &str) -> PathBuf {
    results_dir.join("locks").join(format!("{name}.lock"))
}

/// Tries to take the lock `name` without waiting.
pub fn try_lock(results_dir: &Path, name: &str) -> anyhow::Result<TryLock> {
    let path = lock_path(results_dir, name);
    let file = open_lock_file(results_dir, name)?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(TryLock::Held(read_owner(&path)));
        }
        anyhow::bail!("cannot lock {}: {err}", path.display());
    }
    let owner = LockOwner {
        pid: std::process::id(),
        host: host_name(),
        boot_id: boot_id(),
    };
    file.set_len(0)?;
    (&file).write_all(serde_json::to_string(&owner)?.as_bytes())?;
    Ok(TryLock::Acquired(KeyLock { file }))
}

/// Takes the lock `name`, waiting (polling every 200 ms) while another process holds it.
/// `on_wait` is called once with the holder when the lock is busy.
pub async fn lock(
    results_dir: &Path,
    name: &str,
    mut on_wait: impl FnMut(Option<LockOwner>),
) -> anyhow::Result<KeyLock> {
    let mut told = false;
    loop {
        match try_lock(results_dir, name)? {
            TryLock::Acquired(lock) => return Ok(lock),
            TryLock::Held(owner) => {
                if !told {
                    on_wait(owner);
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// The recorded holder of a lock file, if readable.
pub fn read_owner(path: &Path) -> Option<LockOwner> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Empty the file first, so readers never see a released lock's owner as current.
        let _ = self.file.set_len(0);
        // SAFETY: unlocking a descriptor we own; closing it would release it too.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_respected_and_a_dead_holders_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let first = match try_lock(dir.path(), "k").unwrap() {
            TryLock::Acquired(lock) => lock,
            TryLock::Held(_) => panic!("fresh lock must be free"),
        };
        match try_lock(dir.path(), "k").unwrap() {
            TryLock::Held(owner) => assert_eq!(owner.unwrap().pid, std::process::id()),
            TryLock::Acquired(_) => panic!("a held lock must not be taken twice"),
        }
        drop(first);
        // A lock file left by a process that is gone (its record says pid 999999) is free.
        std::fs::write(
            lock_path(dir.path(), "k"),
            r#"{"pid":999999,"host":"h","boot_id":"b"}"#,
        )
        .unwrap();
        assert!(matches!(
            try_lock(dir.path(), "k").unwrap(),
            TryLock::Acquired(_)
        ));
    }

    #[test]
    fn a_shared_hold_keeps_the_exclusive_lock_out() {
        let dir = tempfile::tempdir().unwrap();
        let run = lock_shared(dir.path(), RESULTS_IN_USE).unwrap();
        let another_run = lock_shared(dir.path(), RESULTS_IN_USE).unwrap();
        assert!(matches!(
            try_lock(dir.path(), RESULTS_IN_USE).unwrap(),
            TryLock::Held(_)
        ));
        drop((run, another_run));
        assert!(matches!(
            try_lock(dir.path(), RESULTS_IN_USE).unwrap(),
            TryLock::Acquired(_)
        ));
    }
}
