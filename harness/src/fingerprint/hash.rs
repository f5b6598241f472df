//! sha256 of file contents, read in large buffered chunks.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Size of the read buffer: large sequential reads keep the disk and the SHA-NI unit busy.
pub(crate) const READ_BUFFER: usize = 1 << 20;

/// sha256 (lowercase hex) of the content of the file at `path`.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut buffer = vec![0u8; READ_BUFFER];
    hash_file(path, &mut buffer).map(|(sha256, _)| sha256)
}

/// sha256 (hex) and length of the file at `path`, reading through `buffer`. Errors name the path.
pub(crate) fn hash_file(path: &Path, buffer: &mut [u8]) -> io::Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            super::sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let missing = super::sha256_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing"), "{missing}");
    }
}
