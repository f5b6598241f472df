//! Errors of the dataset readers and writers: each names the file, and the line where there is one.

use std::io;
use std::path::{Path, PathBuf};

/// A dataset file that could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A text or XML file with a bad line.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file whose content is wrong as a whole (image size, pixel value, layout).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file or folder that could not be opened, read, listed or written. It shows as the path;
    /// the I/O error is its source, so a chain (`{:#}`) reads `PATH: REASON`.
    #[error("{}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file that its codec (PNG, TIFF, JPEG, JSON) cannot decode or encode.
    #[error("{}: {message}", path.display())]
    Codec {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        message: String,
    },
}

impl DataError {
    /// A parse error at `line` (1-based) of `path`.
    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// A content error in `path`.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A codec error on `path`.
    pub fn codec(path: &Path, error: impl std::fmt::Display) -> Self {
        DataError::Codec {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
    }
}

/// Result of the data readers and writers.
pub type DataResult<T> = Result<T, DataError>;

/// Reads a whole text file, naming it on failure.
pub fn read_text(path: &Path) -> DataResult<String> {
    std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Reads a whole file, naming it on failure.
pub fn read_bytes(path: &Path) -> DataResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Opens a file for reading, naming it on failure.
pub fn open_file(path: &Path) -> DataResult<std::fs::File> {
    std::fs::File::open(path).map_err(|e| DataError::io(path, e))
}

/// Writes a whole file, creating its parent folder, naming it on failure.
pub fn write_file(path: &Path, bytes: &[u8]) -> DataResult<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

/// The entries of a folder, sorted by name, naming the folder on failure.
pub fn sorted_entries(dir: &Path) -> DataResult<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<DataResult<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_its_path_and_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.txt");
        let err = read_text(&missing).unwrap_err();
        assert!(matches!(&err, DataError::Io { path, .. } if *path == missing));
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(std::error::Error::source(&err).unwrap().is::<io::Error>());
        let shown = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(shown, format!("{}: {cause}", missing.display()));
    }
}
