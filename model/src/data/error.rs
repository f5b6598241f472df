//! Errors of the dataset readers and writers: each names the file, and the line where there is one.

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
    /// An I/O or codec failure.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
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

    /// An I/O or codec error on `path`.
    pub fn io(path: &Path, error: impl std::fmt::Display) -> Self {
        DataError::Io {
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
