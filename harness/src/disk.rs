//! Free space of the filesystem under a path, so that a stage failing on a full disk says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Below this many free bytes a filesystem counts as full.
const FULL_BELOW: u64 = 1 << 20;

/// Bytes available to this user on the filesystem holding `path`, if it can be asked.
pub fn available_bytes(path: &Path) -> Option<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we pass; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// `no space left on device at PATH (N bytes free)` when the filesystem holding `path` is full.
pub fn full_note(path: &Path) -> Option<String> {
    let free = available_bytes(path)?;
    (free < FULL_BELOW).then(|| {
        format!(
            "no space left on device at {} ({free} bytes free): free space there, then run again",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filesystem_with_room_is_not_full() {
        let dir = tempfile::tempdir().unwrap();
        let free = available_bytes(dir.path()).unwrap();
        assert_eq!(full_note(dir.path()).is_some(), free < FULL_BELOW);
        assert_eq!(available_bytes(Path::new("/no/such/dir")), None);
    }
}
